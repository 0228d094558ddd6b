package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// runHook runs a postStart or preStop handler of container c (instance
// id) and returns its output.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		code, err := k.rt.Exec(ctx, id, rt.ExecOptions{Cmd: h.Exec.Command, Stdout: &out, Stderr: &out})
		if err != nil {
			return out.String(), err
		}
		if code != 0 {
			return out.String(), fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		return out.String(), nil
	case h.HTTPGet != nil:
		return httpHook(ctx, pod, c, podIP, h.HTTPGet)
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-k.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return "", nil
	case h.TCPSocket != nil:
		return "", fmt.Errorf("tcpSocket lifecycle handlers are deprecated and not supported")
	}
	return "", fmt.Errorf("the lifecycle handler has no action")
}

// httpHook performs an httpGet lifecycle handler.
func httpHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIP string, g *corev1.HTTPGetAction) (string, error) {
	host := g.Host
	if host == "" {
		host = podIP
	}
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return string(body), fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v, message: %q",
			g.Path, c.Name, pod.Name, fmt.Errorf("HTTP status %d", resp.StatusCode), string(body))
	}
	return string(body), nil
}

// resolvePort turns a port number or a container port name into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p, c.Name)
}

// hookMessage is the event message of a failed hook.
func hookMessage(hook string, c *corev1.Container, out string, err error) string {
	return fmt.Sprintf("%s failed: %v", hook, err)
}
