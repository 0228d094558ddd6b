package prober

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// node is a fake runtime with a running sandbox for pod "ns/p".
type node struct {
	t   *testing.T
	rt  *fake.Runtime
	sb  string
	ids []string
}

func newNode(t *testing.T) *node {
	t.Helper()
	rt := fake.New()
	ctx := context.Background()
	if _, err := rt.ImportImage(ctx, bytes.NewReader(nil), "img", runtime.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: "n", Pod: podRef, Image: "img", Hostname: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, rt: rt, sb: sb, ids: []string{sb}}
	return n
}

var podRef = runtime.PodRef{UID: "uid-1", Name: "p", Namespace: "ns"}

// run starts an attempt of container "app" and returns its ID.
func (n *node) run(attempt int) string {
	n.t.Helper()
	ctx := context.Background()
	id, err := n.rt.CreateContainer(ctx, runtime.ContainerSpec{
		Node: "n", Pod: podRef, SandboxID: n.sb, Name: "app", Attempt: attempt, Image: "img", Command: []string{"sleep", "inf"},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.rt.StartContainer(ctx, id); err != nil {
		n.t.Fatal(err)
	}
	n.ids = append(n.ids, id)
	return id
}

// close removes every container, ending their goroutines (a synctest
// bubble must end with none left).
func (n *node) close() {
	for i := len(n.ids) - 1; i >= 0; i-- {
		_ = n.rt.RemoveContainer(context.Background(), n.ids[i])
	}
}

// testPod is pod ns/p with one container "app" and the given probes.
func testPod(startup, liveness, readiness *corev1.Probe) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID(podRef.UID)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "img",
			StartupProbe: startup, LivenessProbe: liveness, ReadinessProbe: readiness,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

// execProbe is an exec probe running `check NAME`.
func execProbe(name string, delay, period, success, failure int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check", name}}},
		InitialDelaySeconds: delay, PeriodSeconds: period, SuccessThreshold: success, FailureThreshold: failure,
	}
}

// script answers the `check NAME` commands of exec probes with the exit
// code set for NAME, printing "NAME says N", and counts them.
type script struct {
	mu    sync.Mutex
	codes map[string]int
	runs  map[string]int
}

func newScript(rt *fake.Runtime) *script {
	s := &script{codes: map[string]int{}, runs: map[string]int{}}
	rt.ExecHook = func(id string, opts runtime.ExecOptions) (int, bool) {
		if len(opts.Cmd) != 2 || opts.Cmd[0] != "check" {
			return 0, false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		code := s.codes[opts.Cmd[1]]
		s.runs[opts.Cmd[1]]++
		fmt.Fprintf(opts.Stdout, "%s says %d", opts.Cmd[1], code)
		return code, true
	}
	return s
}

func (s *script) set(name string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[name] = code
}

func (s *script) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

// recorder collects the events and Changed calls of a Manager.
type recorder struct {
	mu      sync.Mutex
	events  []string
	changed int
}

func (r *recorder) config(rt runtime.Runtime) Config {
	return Config{
		Runtime: rt,
		Changed: func(types.UID) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.changed++
		},
		Event: func(pod *corev1.Pod, eventType, reason, message string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, eventType+" "+reason+" "+message)
		},
	}
}

func (r *recorder) snapshot() (events []string, changed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), r.changed
}
