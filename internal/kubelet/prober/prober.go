// Package prober runs the startup, liveness and readiness probes of a
// node's running containers, with the kubelet's semantics: one worker per
// container instance and probe kind, initial delays, periods, timeouts,
// success and failure thresholds, startup gating and Unhealthy events.
//
// Run performs a single probe (exec, httpGet, tcpSocket or grpc); Manager
// keeps the workers and the results the kubelet reads back.
package prober

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Kind is the kind of a probe.
type Kind string

// The kinds of probes.
const (
	Startup   Kind = "startup"
	Liveness  Kind = "liveness"
	Readiness Kind = "readiness"
)

// Kinds lists the kinds in the order the kubelet evaluates them.
var Kinds = []Kind{Startup, Liveness, Readiness}

// Title is the kind as event messages start with it ("Liveness").
func (k Kind) Title() string {
	switch k {
	case Startup:
		return "Startup"
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	}
	return string(k)
}

// Result is the outcome of a probe.
type Result int

// The results of a probe. Unknown means the probe could not be run (its
// message is the error); Warning is a success with something to report,
// such as an HTTP redirect the prober did not follow.
const (
	Unknown Result = iota
	Success
	Failure
	Warning
)

// String names the result.
func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Warning:
		return "warning"
	}
	return "unknown"
}

// Target is a running container to probe.
type Target struct {
	Pod         *corev1.Pod // for probe specs, named ports, namespace/name/uid (read-only)
	Container   string      // name in the pod spec
	ContainerID string      // runtime ID of the running instance
	StartedAt   time.Time
	PodIP       string
}

// The kubelet's defaults for unset probe fields.
const (
	defaultTimeoutSeconds   = 1
	defaultPeriodSeconds    = 10
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// maxOutput bounds the output (exec) or body (httpGet) a probe keeps.
const maxOutput = 10 * 1024

// Run performs one probe of t with p and returns its result and its output:
// the command's output for exec, the failure or error message otherwise.
// It is bounded by p's timeoutSeconds.
func Run(ctx context.Context, rt runtime.Runtime, p *corev1.Probe, t Target) (Result, string) {
	if p == nil {
		return Unknown, "no probe"
	}
	c := findContainer(t.Pod, t.Container)
	if c == nil {
		return Unknown, fmt.Sprintf("container %q not found in the pod", t.Container)
	}
	timeout := timeoutOf(p)
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		return Exec(ctx, rt, t.ContainerID, expandCommand(h.Exec.Command, c), timeout)
	case h.HTTPGet != nil:
		return HTTPGet(ctx, h.HTTPGet, t.Pod, t.Container, t.PodIP, timeout)
	case h.TCPSocket != nil:
		port, err := ResolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return Unknown, err.Error()
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.PodIP
		}
		return TCP(ctx, host, port, timeout)
	case h.GRPC != nil:
		return GRPC(ctx, h.GRPC, t.PodIP, timeout)
	}
	return Unknown, "missing probe handler"
}

// findContainer returns the container or init container (a sidecar may
// have probes) named name, or nil.
func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// probeOf returns the container's probe of kind k, or nil.
func probeOf(c *corev1.Container, k Kind) *corev1.Probe {
	if c == nil {
		return nil
	}
	switch k {
	case Startup:
		return c.StartupProbe
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	}
	return nil
}

func timeoutOf(p *corev1.Probe) time.Duration {
	return time.Duration(orDefault(p.TimeoutSeconds, defaultTimeoutSeconds)) * time.Second
}

func orDefault(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}
