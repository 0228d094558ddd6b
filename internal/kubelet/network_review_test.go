package kubelet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// countingPodNetwork counts TearDown calls.
type countingPodNetwork struct {
	*fakePodNetwork
	mu        sync.Mutex
	teardowns int
}

func (n *countingPodNetwork) TearDown(ctx context.Context, id string) error {
	n.mu.Lock()
	n.teardowns++
	n.mu.Unlock()
	return n.fakePodNetwork.TearDown(ctx, id)
}

func (n *countingPodNetwork) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.teardowns
}

func sandboxOf(h *harness, pod *corev1.Pod) string {
	for _, c := range h.containers(pod.UID) {
		if c.Meta.Kind == "sandbox" {
			return c.ID
		}
	}
	return ""
}

// A sandbox that runs without an address (the agent stopped between
// starting it and setting up its network, or its allocation was lost) is
// replaced, as the kubelet replaces a sandbox whose status has no IP;
// before, the pod ran for good without an address.
func TestRunningSandboxWithoutAddressIsReplaced(t *testing.T) {
	h := newHarness(t, nil)
	pn := newFakePodNetwork()
	h.k.cfg.PodNetwork = pn
	h.run()
	pod := testPod("noaddr", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	old := sandboxOf(h, pod)
	if err := pn.TearDown(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	h.k.kick(pod.UID)
	h.until(100*time.Millisecond, "a new sandbox with an address", func() error {
		s := h.status(pod.UID)
		sb := sandboxOf(h, pod)
		if sb == old || sb == "" {
			return fmt.Errorf("sandbox %q not replaced", sb)
		}
		if s.PodIP != "10.42.0.3" {
			return fmt.Errorf("podIP %q", s.PodIP)
		}
		return running(s)
	})
}

// A terminal pod's sandbox gives its address back once, not at every
// resync of the pod.
func TestTerminalPodTearsDownOnce(t *testing.T) {
	h := newHarness(t, nil)
	pn := &countingPodNetwork{fakePodNetwork: newFakePodNetwork()}
	h.k.cfg.PodNetwork = pn
	h.run()
	pod := testPod("done", corev1.Container{Name: "app", Command: []string{"true"}})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.client.add(pod)
	h.until(100*time.Millisecond, "succeeded", func() error {
		if p := h.status(pod.UID).Phase; p != corev1.PodSucceeded {
			return fmt.Errorf("phase %q", p)
		}
		if pn.fakePodNetwork.count() != 0 {
			return errors.New("address not released")
		}
		return nil
	})
	// Ten relists (each of 11 s of the clock, past a resync) later.
	before := pn.count()
	pn.fakePodNetwork.mu.Lock()
	gcs := pn.fakePodNetwork.gcs
	pn.fakePodNetwork.mu.Unlock()
	h.until(11*time.Second, "ten relists", func() error {
		pn.fakePodNetwork.mu.Lock()
		defer pn.fakePodNetwork.mu.Unlock()
		if pn.fakePodNetwork.gcs < gcs+10 {
			return fmt.Errorf("%d relists", pn.fakePodNetwork.gcs-gcs)
		}
		return nil
	})
	if n := pn.count() - before; n > 0 {
		t.Fatalf("%d more teardowns of a stopped sandbox without an address", n)
	}
}
