package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/kubelet/prober"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// runHook runs a postStart or preStop handler of container c (instance
// id); a failure's error carries the handler's output.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, h *corev1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		var out bytes.Buffer
		code, err := k.rt.Exec(ctx, id, rt.ExecOptions{Cmd: h.Exec.Command, Stdout: &out, Stderr: &out})
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out.String())
		}
		return nil
	case h.HTTPGet != nil:
		return httpHook(ctx, pod, c, podIP, h.HTTPGet)
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-k.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	case h.TCPSocket != nil:
		return fmt.Errorf("tcpSocket lifecycle handlers are deprecated and not supported")
	}
	return fmt.Errorf("the lifecycle handler has no action")
}

// httpHook performs an httpGet lifecycle handler.
func httpHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIP string, g *corev1.HTTPGetAction) error {
	req, err := prober.NewRequest(ctx, g, c, podIP)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v, message: %q",
			g.Path, c.Name, pod.Name, fmt.Errorf("HTTP status %d", resp.StatusCode), string(body))
	}
	return nil
}

// hookMessage is the event message of a failed hook.
func hookMessage(hook string, err error) string {
	return fmt.Sprintf("%s failed: %v", hook, err)
}
