package kubelet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// A relist that finds a pod's name taken by a new pod (another UID, as a
// StatefulSet recreates it) reports it as an update of the old object:
// the old pod is gone and its containers must go with it.
func TestPodReplacedUnderTheSameNameStopsTheOldOne(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	old := testPod("web-0", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(old)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(old.UID)) })

	repl := testPod("web-0", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	repl.UID = types.UID("uid-web-0-new")
	h.client.mu.Lock()
	stale := h.client.pods[old.UID]
	delete(h.client.pods, old.UID)
	h.client.pods[repl.UID] = repl
	h.client.mu.Unlock()
	h.k.HandlePod(stale, repl)

	h.until(100*time.Millisecond, "new pod running", func() error { return running(h.status(repl.UID)) })
	h.until(100*time.Millisecond, "old containers removed", func() error {
		if cs := h.containers(old.UID); len(cs) != 0 {
			return fmt.Errorf("%d containers of the replaced pod left", len(cs))
		}
		return nil
	})
	if p := h.k.Pod(old.UID); p != nil {
		t.Fatalf("the kubelet still holds the replaced pod")
	}
}

// startFailing is the fake runtime with Docker's behaviour when a
// container's process cannot be started: StartContainer fails and the
// container stays "created" with exit code 127 and the error.
type startFailing struct {
	*fake.Runtime
	mu     sync.Mutex
	failed map[string]string // container ID -> start error
	starts int
}

func (r *startFailing) StartContainer(ctx context.Context, id string) error {
	st, err := r.Runtime.InspectContainer(ctx, id)
	if err == nil && st.Meta.Kind == rt.KindContainer && st.Meta.Name == "bad" {
		msg := `exec: "/nonexistent": stat /nonexistent: no such file or directory: unknown`
		r.mu.Lock()
		r.failed[id] = msg
		r.starts++
		r.mu.Unlock()
		return errors.New("failed to create shim task: " + msg)
	}
	return r.Runtime.StartContainer(ctx, id)
}

func (r *startFailing) InspectContainer(ctx context.Context, id string) (rt.ContainerStatus, error) {
	st, err := r.Runtime.InspectContainer(ctx, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg, ok := r.failed[id]; ok && err == nil {
		st.ExitCode, st.Error = 127, msg
	}
	return st, err
}

func (r *startFailing) startCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts
}

func newStartFailing(t *testing.T) *startFailing {
	h := newHarness(t, nil) // only for its runtime with images
	return &startFailing{Runtime: h.rt, failed: map[string]string{}}
}

func TestContainerThatCannotStartFailsANeverPod(t *testing.T) {
	r := newStartFailing(t)
	h := newHarness(t, r.Runtime)
	h.k.rt, h.k.cfg.Runtime = r, r
	h.run()
	pod := testPod("nostart", corev1.Container{Name: "bad", Command: []string{"/nonexistent"}})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.client.add(pod)
	h.until(100*time.Millisecond, "failed", func() error {
		s := h.status(pod.UID)
		if s.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s, containers %+v", s.Phase, s.ContainerStatuses)
		}
		if tm := s.ContainerStatuses[0].State.Terminated; tm == nil || tm.ExitCode == 0 {
			return fmt.Errorf("state %+v", s.ContainerStatuses[0].State)
		}
		return nil
	})
	if n := r.startCount(); n != 1 {
		t.Fatalf("%d start attempts of a restartPolicy Never container", n)
	}
}

func TestContainerThatCannotStartBacksOff(t *testing.T) {
	r := newStartFailing(t)
	h := newHarness(t, r.Runtime)
	h.k.rt, h.k.cfg.Runtime = r, r
	h.run()
	pod := testPod("nostart", corev1.Container{Name: "bad", Command: []string{"/nonexistent"}})
	h.client.add(pod)
	h.until(time.Second, "crash loop", func() error {
		cs := h.status(pod.UID).ContainerStatuses
		if len(cs) == 0 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CrashLoopBackOff" || cs[0].RestartCount < 1 {
			return fmt.Errorf("status %+v", cs)
		}
		return nil
	})
	// 60 s of fake time: restarts at 0, 10, 30 s at most.
	before := r.startCount()
	for range 60 {
		time.Sleep(5 * time.Millisecond)
		h.clock.Step(time.Second)
	}
	if n := r.startCount() - before; n > 3 {
		t.Fatalf("%d start attempts in 60 s of back-off", n)
	}
}

// A condition another writer adds (a readiness gate's controller) after
// the kubelet's last look must survive the kubelet's next status write.
func TestStatusWriteKeepsConditionsOthersAdded(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("gated", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })

	// The write lands in the API; the kubelet's informer lags behind.
	h.client.mu.Lock()
	p := h.client.pods[pod.UID].DeepCopy()
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: "example.com/gate", Status: corev1.ConditionTrue})
	h.client.pods[pod.UID] = p
	h.client.mu.Unlock()

	id := h.status(pod.UID).ContainerStatuses[0].ContainerID[len("docker://"):]
	if err := h.rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	h.until(10*time.Millisecond, "restart reported", func() error {
		if n := h.status(pod.UID).ContainerStatuses[0].RestartCount; n != 1 {
			return fmt.Errorf("restartCount %d", n)
		}
		return nil
	})
	if condition(h.status(pod.UID), "example.com/gate") != corev1.ConditionTrue {
		t.Fatalf("the kubelet's status write dropped another writer's condition: %+v", h.status(pod.UID).Conditions)
	}
}

// countingLists is the fake runtime counting the lists of one pod's
// containers.
type countingLists struct {
	*fake.Runtime
	mu    sync.Mutex
	lists int
}

func (r *countingLists) ListContainers(ctx context.Context, f rt.ListFilter) ([]rt.Container, error) {
	if f.PodUID != "" {
		r.mu.Lock()
		r.lists++
		r.mu.Unlock()
	}
	return r.Runtime.ListContainers(ctx, f)
}

func (r *countingLists) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lists
}

// A sync of a pod whose containers run as they should lists them once,
// not once for the sync, once for the prober and once for the status.
func TestIdleSyncListsThePodOnce(t *testing.T) {
	h := newHarness(t, nil)
	r := &countingLists{Runtime: h.rt}
	h.k.rt, h.k.cfg.Runtime = r, r
	pod := testPod("idle", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod) // not running: the test drives the syncs
	ctx := context.Background()
	for i := 0; running(h.status(pod.UID)) != nil; i++ {
		if i == 20 {
			t.Fatalf("not running after %d syncs: %+v", i, h.status(pod.UID))
		}
		h.k.sync(ctx, pod.UID, h.k.Pod(pod.UID))
	}
	h.k.sync(ctx, pod.UID, h.k.Pod(pod.UID))
	before := r.count()
	h.k.sync(ctx, pod.UID, h.k.Pod(pod.UID))
	if n := r.count() - before; n != 1 {
		t.Fatalf("an idle sync listed the pod's containers %d times", n)
	}
	h.k.probes.Stop()
}

// A terminal phase never changes: a pod another writer failed (the pod
// GC, an eviction) stays Failed in the kubelet's final status even when
// its containers then exit 0.
func TestTerminalPhaseIsKept(t *testing.T) {
	h := newHarness(t, nil)
	pod := testPod("evicted", corev1.Container{Name: "app"})
	pod.Status.Phase = corev1.PodFailed
	pc := &podContainers{byName: map[string][]rt.ContainerStatus{"app": {{
		Container:  rt.Container{ID: "c1", State: rt.StateExited, Meta: rt.Meta{Kind: rt.KindContainer, Name: "app"}},
		FinishedAt: time.Now(),
	}}}}
	for _, terminal := range []bool{false, true} {
		if s := h.k.computeStatus(pod, pc, h.k.memory(pod.UID), terminal); s.Phase != corev1.PodFailed {
			t.Fatalf("terminal=%v: phase %s, want Failed kept", terminal, s.Phase)
		}
	}
}
