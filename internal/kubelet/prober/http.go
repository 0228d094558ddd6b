package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/version"
)

// UserAgent is the User-Agent of HTTP probes unless the probe sets one.
const UserAgent = "kube-probe/" + version.KubeMajor + "." + version.KubeMinor

// transport is shared by all HTTP probes: no keep-alives (each probe opens
// its own connection, as the kubelet's do), no proxy, no compression, and
// no verification of the container's certificate.
var transport = &http.Transport{
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
	DisableKeepAlives:   true,
	DisableCompression:  true,
	Proxy:               nil,
	DialContext:         dialer().DialContext,
	TLSHandshakeTimeout: 10 * time.Second,
}

// HTTPGet performs the GET of action against the pod's container: it
// succeeds with a status of 200–399 and fails otherwise with `HTTP probe
// failed with statuscode: N`, or with the client's error (`Get "…": dial
// tcp …`). Redirects are followed only to the same host; a redirect to
// another host is a Warning. The output of a success is the body (at most
// 10 KiB). Host defaults to podIP; a named port is looked up in the
// container's ports.
func HTTPGet(ctx context.Context, action *corev1.HTTPGetAction, pod *corev1.Pod, container, podIP string, timeout time.Duration) (Result, string) {
	req, err := NewRequest(ctx, action, findContainer(pod, container), podIP)
	if err != nil {
		return Unknown, err.Error()
	}
	client := &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		return Failure, err.Error()
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		return Failure, err.Error()
	}
	body := string(b)
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return Success, body
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return Warning, "Probe terminated redirects, Response body: " + body
	}
	// The body stays out of the message: it may hold anything.
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode)
}

// NewRequest builds the GET of an httpGet action (a probe or a lifecycle
// hook) with the kubelet's URL and header rules. c may be nil when the
// port is a number.
func NewRequest(ctx context.Context, action *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*http.Request, error) {
	scheme := strings.ToLower(string(action.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := action.Host
	if host == "" {
		host = podIP
	}
	port, err := ResolvePort(action.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(action.Path)
	if err != nil {
		// Too late to reject the path: pass it along as written.
		u = &url.URL{Path: action.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("http probe request: %w", err)
	}
	headers := make(http.Header)
	for _, h := range action.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", UserAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// sameHostRedirects follows a redirect only to the same host, at most 10.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// ResolvePort returns the port number of a probe or hook: a number, or
// the name of one of c's ports (or a number written as a string).
func ResolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		if c != nil {
			for _, cp := range c.Ports {
				if cp.Name == p.StrVal {
					port, found = int(cp.ContainerPort), true
					break
				}
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", p)
	}
	if port <= 0 || port > 65535 {
		return port, fmt.Errorf("invalid port number: %v", port)
	}
	return port, nil
}
