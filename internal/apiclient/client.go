// Package apiclient is the agent's client of the mizzen API server: a small
// generic REST client over JSON and HTTPS (client certificates), and an
// informer that keeps a list+watch copy of one kind in memory. It maps Go
// types (k8s.io/api) to resources through the API server's table of kinds,
// so it needs no generated clientset.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// defaultTimeout bounds a non-watch request when Config.Timeout is 0.
const defaultTimeout = 30 * time.Second

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// Config is what a Client is built from.
type Config struct {
	// Server is the API server's base URL ("https://127.0.0.1:6443").
	Server string
	// TLS holds the CA to trust and the client certificate; nil uses the
	// system roots and no client certificate.
	TLS *tls.Config
	// UserAgent is sent with every request ("mizzen-agent/<version> (node foo)").
	UserAgent string
	// Timeout bounds each non-watch request; 0 means 30 s. Watches are
	// bounded by their context only.
	Timeout time.Duration
}

// Client talks to the API server over HTTPS. It implements
// controller.Client and is safe for concurrent use; its requests, watches
// included, share one HTTP/2 connection. Objects it returns (and those of
// lists and watch events) carry their kind's apiVersion and kind, so a
// caller can build an ObjectReference (for events) without a scheme.
type Client struct {
	base    *url.URL
	http    *http.Client
	agent   string
	timeout time.Duration
	// byType maps a Go type (*corev1.Pod) to the kind served for it.
	byType map[reflect.Type]*registry.Kind
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("api server URL %q: %w", cfg.Server, err)
	}
	if (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("api server URL %q: want https://host:port", cfg.Server)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	tr.ForceAttemptHTTP2 = true
	// Ping an idle HTTP/2 connection so that watches on a half-dead one
	// (server gone without a FIN) fail within a minute, as client-go does.
	tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	c := &Client{base: base, http: &http.Client{Transport: tr}, agent: cfg.UserAgent, timeout: timeout,
		byType: map[reflect.Type]*registry.Kind{}}
	for _, k := range kinds.Registry().Kinds() {
		t := reflect.TypeOf(k.New())
		if _, ok := c.byType[t]; !ok {
			c.byType[t] = k
		}
	}
	return c, nil
}

// kindOf returns the kind served for obj's Go type.
func (c *Client) kindOf(obj runtime.Object) (*registry.Kind, error) {
	k, ok := c.byType[reflect.TypeOf(obj)]
	if !ok {
		return nil, fmt.Errorf("no kind is served for %T", obj)
	}
	return k, nil
}

// kindOfList returns the kind whose list type list has.
func (c *Client) kindOfList(list runtime.Object) (*registry.Kind, error) {
	t := reflect.TypeOf(list)
	for _, k := range c.byType {
		if reflect.TypeOf(k.NewList()) == t {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no kind is served with list type %T", list)
}

// target is the kind, namespace and name obj names.
func (c *Client) target(obj runtime.Object) (*registry.Kind, metav1.Object, error) {
	k, err := c.kindOf(obj)
	if err != nil {
		return nil, nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return k, m, nil
}

// resourcePath returns the path of kind k's collection in namespace, or of
// the object name and its subresource sub when they are set.
func resourcePath(k *registry.Kind, namespace, name, sub string) (string, error) {
	for _, seg := range []string{namespace, name, sub} {
		// No valid name holds these; they would address another path.
		if strings.ContainsAny(seg, "/?#%") || seg == "." || seg == ".." {
			return "", fmt.Errorf("%s: invalid path segment %q", k.GVR.Resource, seg)
		}
	}
	var b strings.Builder
	if k.GVR.Group == "" {
		b.WriteString("/api/" + k.GVR.Version)
	} else {
		b.WriteString("/apis/" + k.GVR.Group + "/" + k.GVR.Version)
	}
	if k.Namespaced && namespace != "" {
		b.WriteString("/namespaces/" + namespace)
	}
	b.WriteString("/" + k.GVR.Resource)
	if name != "" {
		b.WriteString("/" + name)
	} else if sub != "" {
		return "", fmt.Errorf("%s: a subresource needs a name", k.GVR.Resource)
	}
	if sub != "" {
		b.WriteString("/" + sub)
	}
	return b.String(), nil
}

// objectPath is resourcePath for an object that must have a name (and a
// namespace when its kind is namespaced).
func objectPath(k *registry.Kind, namespace, name, sub string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: resource name may not be empty", k.GVR.Resource)
	}
	if k.Namespaced && namespace == "" {
		return "", fmt.Errorf("%s %q: namespace may not be empty", k.GVR.Resource, name)
	}
	return resourcePath(k, namespace, name, sub)
}

// request is one HTTP exchange.
type request struct {
	method      string
	path        string
	query       url.Values
	body        []byte
	contentType string
	// watch requests are not bounded by the client's timeout.
	watch bool
}

// send performs rq and returns the response for a 2xx status; the caller
// closes its body. A non-2xx response becomes an error (a StatusError when
// the body is a Status). cancel releases the request's timeout and must be
// called once the body has been read.
func (c *Client) send(ctx context.Context, rq request) (resp *http.Response, cancel context.CancelFunc, err error) {
	cancel = func() {}
	if !rq.watch {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	u := *c.base
	u.Path += rq.path
	u.RawQuery = rq.query.Encode()
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", rq.method, rq.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rq.contentType != "" {
		req.Header.Set("Content-Type", rq.contentType)
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	resp, err = c.http.Do(req)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", rq.method, rq.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, responseError(rq, resp)
	}
	return resp, cancel, nil
}

// do performs rq and returns the whole response body.
func (c *Client) do(ctx context.Context, rq request) ([]byte, error) {
	resp, cancel, err := c.send(ctx, rq)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", rq.method, rq.path, err)
	}
	return data, nil
}

// responseError turns a non-2xx response into an error: the Status the
// server sent as a *apierrors.StatusError, or else a StatusError carrying
// the code (so apierrors.IsNotFound and friends still work) and the body.
func responseError(rq request, resp *http.Response) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("%s %s: %s, read body: %w", rq.method, rq.path, resp.Status, err)
	}
	var st metav1.Status
	if json.Unmarshal(data, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		return apierrors.FromObject(&st)
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(resp.StatusCode),
		Message: fmt.Sprintf("%s %s: %s: %s", rq.method, rq.path, resp.Status, msg),
	}}
}

// encode returns obj as JSON with the kind's apiVersion and kind set,
// leaving obj itself unchanged.
func encode(k *registry.Kind, obj runtime.Object) ([]byte, error) {
	cp := obj.DeepCopyObject()
	cp.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	data, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Kind, err)
	}
	return data, nil
}

// decodeInto replaces *into (a pointer to a struct) with the JSON in data.
func decodeInto(data []byte, into runtime.Object) error {
	v := reflect.ValueOf(into)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("decode into %T: need a non-nil pointer", into)
	}
	v.Elem().SetZero()
	return utiljson.Unmarshal(data, into)
}

// decodeNew decodes data into a new object of example's type.
func decodeNew(data []byte, example runtime.Object) (runtime.Object, error) {
	obj := reflect.New(reflect.TypeOf(example).Elem()).Interface().(runtime.Object)
	if err := utiljson.Unmarshal(data, obj); err != nil {
		return nil, err
	}
	return obj, nil
}
