package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KubeletClient is how the API server reaches kubelets for pods/log,
// pods/exec and pods/attach.
type KubeletClient struct {
	// TLS trusts the cluster CA and presents the API server's kubelet
	// client certificate (group system:masters).
	TLS *tls.Config

	once      sync.Once
	transport *http.Transport // built from TLS on first use
}

// DefaultKubeletPort is the kubelet port used when a node reports none.
const DefaultKubeletPort = 10250

// defaultContainerAnnotation names the container kubectl picks by default.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

func (k *KubeletClient) roundTripper() *http.Transport {
	k.once.Do(func() {
		k.transport = &http.Transport{
			TLSClientConfig:     k.TLS,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConnsPerHost: 4,
		}
	})
	return k.transport
}

var podLogOptionsKind = schema.GroupKind{Kind: "PodLogOptions"}

// logQuery validates a pods/log query as PodLogOptions and returns the
// container and the parameters for the kubelet.
func logQuery(q url.Values, pod string) (string, url.Values, error) {
	out := url.Values{}
	for _, name := range []string{"follow", "previous", "timestamps", "insecureSkipTLSVerifyBackend"} {
		if v := q.Get(name); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				return "", nil, apierrors.NewBadRequest(fmt.Sprintf("invalid %s parameter %q: %v", name, v, err))
			}
			if name != "insecureSkipTLSVerifyBackend" {
				out.Set(name, v)
			}
		}
	}
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		min  int64
		msg  string
	}{{"tailLines", 0, "must be greater than or equal to 0"}, {"limitBytes", 1, "must be greater than 0"}, {"sinceSeconds", 1, "must be greater than 0"}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", nil, apierrors.NewBadRequest(fmt.Sprintf("invalid %s parameter %q: %v", f.name, v, err))
		}
		if n < f.min {
			errs = append(errs, field.Invalid(field.NewPath(f.name), n, f.msg))
		}
		out.Set(f.name, v)
	}
	if v := q.Get("sinceTime"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return "", nil, apierrors.NewBadRequest(fmt.Sprintf("invalid sinceTime parameter %q: %v", v, err))
		}
		out.Set("sinceTime", v)
		if q.Get("sinceSeconds") != "" {
			errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
		}
	}
	if len(errs) > 0 {
		return "", nil, apierrors.NewInvalid(podLogOptionsKind, pod, errs)
	}
	return q.Get("container"), out, nil
}

// podContainer resolves the container a request names, as the API server
// does: a named container must be in the pod; none names the one container
// (or the default-container annotation's).
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	if name != "" {
		for _, n := range names {
			if n == name {
				return name, nil
			}
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	if def := pod.Annotations[defaultContainerAnnotation]; def != "" {
		for _, c := range pod.Spec.Containers {
			if c.Name == def {
				return def, nil
			}
		}
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names))
}

// kubeletURL is the base URL of the kubelet on nodeName: its InternalIP
// (else Hostname, else ExternalIP) and its reported port.
func (s *Server) kubeletURL(ctx context.Context, nodeName string) (*url.URL, error) {
	k, ok := s.reg.Lookup(corev1.SchemeGroupVersion.WithResource("nodes"))
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("nodes are not registered"))
	}
	obj, err := s.store.Get(ctx, k, "", nodeName)
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("node %s is a %T", nodeName, obj))
	}
	host := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no valid hostname and/or IP address", nodeName))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// loadPod returns the pod a subresource request names.
func (s *Server) loadPod(ctx context.Context, rq request) (*corev1.Pod, error) {
	obj, err := s.store.Get(ctx, rq.kind, rq.namespace, rq.name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s has no %s subresource", rq.kind.GVR.Resource, rq.sub))
	}
	return pod, nil
}

// proxyLog serves pods/<name>/log from the pod's kubelet.
func (s *Server) proxyLog(w http.ResponseWriter, r *http.Request, rq request) {
	pod, err := s.loadPod(r.Context(), rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	name, params, err := logQuery(r.URL.Query(), rq.name)
	if err == nil {
		name, err = podContainer(pod, name)
	}
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	if pod.Spec.NodeName == "" {
		// Kubernetes answers an unscheduled pod's log with an empty stream.
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return
	}
	if s.cfg.Kubelet == nil {
		s.codecs.writeError(w, r, apierrors.NewServiceUnavailable("this API server has no kubelet client"))
		return
	}
	u, err := s.kubeletURL(r.Context(), pod.Spec.NodeName)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	u.Path = "/containerLogs/" + pod.Namespace + "/" + pod.Name + "/" + name
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		s.codecs.writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	resp, err := s.cfg.Kubelet.roundTripper().RoundTrip(req)
	if err != nil {
		s.codecs.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing the kubelet: %v", err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < http.StatusOK || resp.StatusCode > http.StatusPartialContent {
		s.codecs.writeError(w, r, kubeletError(resp, rq))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, resp.Body)
}

// kubeletError turns a kubelet's error answer into a Status, as the API
// server's response checker does.
func kubeletError(resp *http.Response, rq request) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(fmt.Errorf("%s", msg))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", rq.kind.GroupResource(), rq.name, msg, 0, false)
}

// copyFlushing copies a stream to the client, flushing after every read so
// a followed log arrives as it is written.
func copyFlushing(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxyStream serves pods/<name>/exec and pods/<name>/attach by passing
// the (WebSocket upgrade) request through to the pod's kubelet.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, rq request) {
	pod, err := s.loadPod(r.Context(), rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	name, err := podContainer(pod, q.Get("container"))
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	if pod.Spec.NodeName == "" {
		s.codecs.writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	if p := pod.Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
		msg := fmt.Sprintf("cannot exec into a container in a completed pod; current phase is %s", p)
		if rq.sub == "attach" {
			msg = fmt.Sprintf("cannot attach a container in a completed pod; current phase is %s", p)
		}
		s.codecs.writeError(w, r, apierrors.NewBadRequest(msg))
		return
	}
	if s.cfg.Kubelet == nil {
		s.codecs.writeError(w, r, apierrors.NewServiceUnavailable("this API server has no kubelet client"))
		return
	}
	u, err := s.kubeletURL(r.Context(), pod.Spec.NodeName)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	q.Del("container")
	u.Path = "/" + rq.sub + "/" + pod.Namespace + "/" + pod.Name + "/" + name
	u.RawQuery = q.Encode()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = u
			pr.Out.Host = u.Host
			// The kubelet trusts the API server's certificate, never the
			// client's credentials.
			pr.Out.Header.Del("Authorization")
			for h := range pr.Out.Header {
				if strings.HasPrefix(h, "Impersonate-") {
					pr.Out.Header.Del(h)
				}
			}
		},
		Transport:     s.cfg.Kubelet.roundTripper(),
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.codecs.writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing the kubelet: %v", err)))
		},
	}
	proxy.ServeHTTP(w, r)
}
