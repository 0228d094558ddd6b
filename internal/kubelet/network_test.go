package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakePodNetwork hands out addresses from 10.42.0.2 up and records calls.
type fakePodNetwork struct {
	mu       sync.Mutex
	next     netip.Addr
	given    map[string]netip.Addr
	netns    map[string]string
	failNext error
	gcs      int
}

func newFakePodNetwork() *fakePodNetwork {
	return &fakePodNetwork{next: netip.MustParseAddr("10.42.0.2"), given: map[string]netip.Addr{}, netns: map[string]string{}}
}

func (n *fakePodNetwork) SetUp(_ context.Context, id, netnsPath string) (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.failNext; err != nil {
		n.failNext = nil
		return netip.Addr{}, err
	}
	if ip, ok := n.given[id]; ok {
		return ip, nil
	}
	ip := n.next
	n.next = n.next.Next()
	n.given[id], n.netns[id] = ip, netnsPath
	return ip, nil
}

func (n *fakePodNetwork) IP(id string) netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.given[id]
}

func (n *fakePodNetwork) TearDown(_ context.Context, id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.given, id)
	return nil
}

func (n *fakePodNetwork) GC(live func(string) bool, before time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gcs++
	for id := range n.given {
		if !live(id) {
			delete(n.given, id)
		}
	}
	return nil
}

func (n *fakePodNetwork) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.given)
}

func TestPodGetsItsAddressFromThePodNetwork(t *testing.T) {
	h := newHarness(t, nil)
	pn := newFakePodNetwork()
	h.k.cfg.PodNetwork = pn
	h.run()
	pod := testPod("net", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	s := h.status(pod.UID)
	if s.PodIP != "10.42.0.2" || len(s.PodIPs) != 1 || s.PodIPs[0].IP != "10.42.0.2" {
		t.Fatalf("podIP %q podIPs %v, want 10.42.0.2", s.PodIP, s.PodIPs)
	}
	var sandbox string
	for _, c := range h.containers(pod.UID) {
		if c.Meta.Kind == "sandbox" {
			sandbox = c.ID
		}
	}
	pn.mu.Lock()
	path := pn.netns[sandbox]
	pn.mu.Unlock()
	if !strings.HasPrefix(path, "/proc/") || !strings.HasSuffix(path, "/ns/net") {
		t.Fatalf("sandbox %s set up with netns %q", sandbox, path)
	}

	// Deleted: the address goes back.
	del := h.client.pod(pod.UID).DeepCopy()
	now := metav1.NewTime(h.clock.Now())
	grace := int64(0)
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
	h.client.add(del)
	h.until(100*time.Millisecond, "address released", func() error {
		if n := pn.count(); n != 0 {
			return fmt.Errorf("%d addresses still given", n)
		}
		return nil
	})
}

func TestHostNetworkPodSkipsThePodNetwork(t *testing.T) {
	h := newHarness(t, nil)
	pn := newFakePodNetwork()
	h.k.cfg.PodNetwork = pn
	h.run()
	pod := testPod("host", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	pod.Spec.HostNetwork = true
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	if s := h.status(pod.UID); s.PodIP != "192.0.2.10" {
		t.Fatalf("podIP %q, want the host's", s.PodIP)
	}
	if n := pn.count(); n != 0 {
		t.Fatalf("%d addresses given to a host network pod", n)
	}
}

func TestSandboxWhoseNetworkFailsIsRecreated(t *testing.T) {
	h := newHarness(t, nil)
	pn := newFakePodNetwork()
	pn.failNext = errors.New("no addresses left")
	h.k.cfg.PodNetwork = pn
	h.run()
	pod := testPod("retry", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "FailedCreatePodSandBox", func() error {
		if !h.sawEvent("FailedCreatePodSandBox: Failed to create pod sandbox: set up pod network: no addresses left") {
			return errors.New("no event yet")
		}
		return nil
	})
	h.until(time.Second, "running", func() error { return running(h.status(pod.UID)) })
	if s := h.status(pod.UID); s.PodIP != "10.42.0.2" {
		t.Fatalf("podIP %q", s.PodIP)
	}
	sandboxes := 0
	for _, c := range h.containers(pod.UID) {
		if c.Meta.Kind == "sandbox" {
			sandboxes++
		}
	}
	if sandboxes != 1 {
		t.Fatalf("%d sandboxes, want the failed one removed", sandboxes)
	}
}
