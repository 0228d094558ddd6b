package nodestatus

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func (h *harness) sync(t *testing.T) {
	t.Helper()
	if err := h.agent.syncStatus(t.Context()); err != nil {
		t.Fatalf("syncStatus: %v", err)
	}
}

func (h *harness) patches() int { return len(h.client.callsOf("Patch", "Node")) }

func (h *harness) condition(t *testing.T, typ corev1.NodeConditionType) corev1.NodeCondition {
	t.Helper()
	c := findCondition(h.client.node(t, "n1").Status.Conditions, typ)
	if c == nil {
		t.Fatalf("no %s condition", typ)
	}
	return *c
}

func at(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

func TestStatusPatchedOnlyOnChangeOrAfterReportInterval(t *testing.T) {
	h := newHarness(t, nil)
	h.register(t)

	steps := []struct {
		name      string
		advance   time.Duration
		change    func()
		wantPatch bool
	}{
		{"unchanged right after registration", 0, nil, false},
		{"unchanged after one interval", 10 * time.Second, nil, false},
		{"unchanged just before the report interval", 4*time.Minute + 49*time.Second, nil, false},
		{"unchanged at the report interval", time.Second, nil, true},
		{"unchanged right after a report", 10 * time.Second, nil, false},
		{"usage changes without a condition flipping", 10 * time.Second,
			func() { h.host.setUsage(func(u *HostUsage) { u.MemoryAvailable = 1 << 30; u.PIDs = 900 }) }, false},
		{"a condition flips", 10 * time.Second,
			func() { h.host.setUsage(func(u *HostUsage) { u.DiskAvailable = 1 << 30 }) }, true},
		{"capacity changes", 10 * time.Second,
			func() { h.host.mu.Lock(); h.host.info.CPUs = 8; h.host.mu.Unlock() }, true},
		{"the runtime version changes", 10 * time.Second,
			func() { h.rt.setDown(errors.New("docker version: connection refused")) }, true},
	}
	var elapsed time.Duration
	for _, s := range steps {
		h.clock.Step(s.advance)
		elapsed += s.advance
		if s.change != nil {
			s.change()
		}
		before := h.patches()
		h.sync(t)
		if got := h.patches() - before; got != map[bool]int{false: 0, true: 1}[s.wantPatch] {
			t.Fatalf("%s: %d status patches, want patch=%v", s.name, got, s.wantPatch)
		}
		if s.wantPatch {
			ready := h.condition(t, corev1.NodeReady)
			if !ready.LastHeartbeatTime.Equal(&metav1.Time{Time: t0.Add(elapsed)}) {
				t.Errorf("%s: heartbeat = %v, want now (%v)", s.name, ready.LastHeartbeatTime, t0.Add(elapsed))
			}
		}
	}
	// Transition times moved only with their status.
	if mem := h.condition(t, corev1.NodeMemoryPressure); !mem.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
		t.Errorf("MemoryPressure transition = %v, want registration time", mem.LastTransitionTime)
	}
	disk := h.condition(t, corev1.NodeDiskPressure)
	if want := at(5*time.Minute + 30*time.Second); disk.Status != corev1.ConditionTrue || !disk.LastTransitionTime.Equal(&want) {
		t.Errorf("DiskPressure = %+v, want True since %v", disk, want)
	}
}

func TestStatusPatchIsMergePatchOfOwnFields(t *testing.T) {
	h := newHarness(t, nil)
	h.register(t)
	// Other writers: the IPAM controller and a network plugin.
	n := h.client.node(t, "n1")
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.42.1.0/24", []string{"10.42.1.0/24"}
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated",
		LastHeartbeatTime: at(0), LastTransitionTime: at(0),
	})
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"busybox:latest"}, SizeBytes: 1}}
	h.client.put(n)

	h.clock.Step(ReportInterval)
	h.sync(t)
	calls := h.client.callsOf("Patch", "Node")
	if len(calls) != 1 {
		t.Fatalf("status patches = %d, want 1", len(calls))
	}
	p := calls[0]
	if p.PatchType != types.MergePatchType || p.Sub != "status" {
		t.Errorf("patch type %q on %q, want a merge patch of status", p.PatchType, p.Sub)
	}
	var body map[string]map[string]json.RawMessage
	if err := json.Unmarshal(p.Data, &body); err != nil {
		t.Fatalf("patch body %s: %v", p.Data, err)
	}
	if len(body) != 1 || body["status"] == nil {
		t.Errorf("patch top-level keys = %v, want only status", slices.Sorted(maps.Keys(body)))
	}
	wantKeys := []string{"addresses", "allocatable", "capacity", "conditions", "daemonEndpoints", "nodeInfo"}
	if got := slices.Sorted(maps.Keys(body["status"])); !slices.Equal(got, wantKeys) {
		t.Errorf("patched status fields = %v, want %v", got, wantKeys)
	}

	n = h.client.node(t, "n1")
	if n.Spec.PodCIDR != "10.42.1.0/24" || len(n.Status.Images) != 1 {
		t.Errorf("podCIDR %q images %v: another writer's fields were clobbered", n.Spec.PodCIDR, n.Status.Images)
	}
	if c := findCondition(n.Status.Conditions, corev1.NodeNetworkUnavailable); c == nil || c.Reason != "RouteCreated" {
		t.Errorf("NetworkUnavailable = %+v, want it kept", c)
	}
	if got := h.agent.Node(); got.ResourceVersion != n.ResourceVersion {
		t.Errorf("Node() resourceVersion = %s, want the patched %s", got.ResourceVersion, n.ResourceVersion)
	}
}

func TestStatusRestoresRemovedDefaultLabels(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Labels = map[string]string{"team": "x"} })
	h.register(t)
	n := h.client.node(t, "n1")
	delete(n.Labels, LabelHostname)
	delete(n.Labels, "team")
	h.client.put(n)

	h.sync(t)
	n = h.client.node(t, "n1")
	if n.Labels[LabelHostname] != "n1" {
		t.Errorf("hostname label = %q, want it restored", n.Labels[LabelHostname])
	}
	if _, ok := n.Labels["team"]; ok {
		t.Error("a removed --node-label was put back; only the default labels are")
	}
}

func TestPressureConditions(t *testing.T) {
	tests := []struct {
		name        string
		usage       func(*HostUsage)
		typ         corev1.NodeConditionType
		wantStatus  corev1.ConditionStatus
		wantReason  string
		wantMessage string
		wantEvent   string
	}{
		{"memory below 100Mi", func(u *HostUsage) { u.MemoryAvailable = 100<<20 - 1 },
			"MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", "NodeHasInsufficientMemory"},
		{"memory at 100Mi", func(u *HostUsage) { u.MemoryAvailable = 100 << 20 },
			"MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", ""},
		{"disk below 10% free", func(u *HostUsage) { u.DiskAvailable = u.DiskCapacity/10 - 1 },
			"DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure", "NodeHasDiskPressure"},
		{"disk at 10% free", func(u *HostUsage) { u.DiskAvailable = u.DiskCapacity / 10 },
			"DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", ""},
		{"tasks above 90% of the limit", func(u *HostUsage) { u.PIDMax = 1000; u.PIDs = 901 },
			"PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available", "NodeHasInsufficientPID"},
		{"tasks at 90% of the limit", func(u *HostUsage) { u.PIDMax = 1000; u.PIDs = 900 },
			"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.register(t)
			before := len(h.events.reasons())

			h.clock.Step(10 * time.Second)
			h.host.setUsage(tt.usage)
			h.sync(t)
			c := h.condition(t, tt.typ)
			if c.Status != tt.wantStatus || c.Reason != tt.wantReason || c.Message != tt.wantMessage {
				t.Errorf("%s = %s %q %q, want %s %q %q", tt.typ, c.Status, c.Reason, c.Message, tt.wantStatus, tt.wantReason, tt.wantMessage)
			}
			wantTransition := at(0)
			if tt.wantStatus == corev1.ConditionTrue {
				wantTransition = at(10 * time.Second)
			}
			if !c.LastTransitionTime.Equal(&wantTransition) {
				t.Errorf("lastTransitionTime = %v, want %v", c.LastTransitionTime, wantTransition)
			}
			if ready := h.condition(t, corev1.NodeReady); ready.Status != corev1.ConditionTrue || !ready.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
				t.Errorf("Ready = %+v, want True since registration", ready)
			}
			var wantEvents []string
			if tt.wantEvent != "" {
				wantEvents = []string{tt.wantEvent}
			}
			if got := h.events.reasons()[before:]; !slices.Equal(got, wantEvents) {
				t.Errorf("events = %v, want %v", got, wantEvents)
			}
			if tt.wantEvent == "" {
				return
			}
			// Relief flips it back, with a new transition time.
			h.clock.Step(10 * time.Second)
			h.host.setUsage(func(u *HostUsage) { *u = newFakeHost().usage })
			h.sync(t)
			c = h.condition(t, tt.typ)
			if want := at(20 * time.Second); c.Status != corev1.ConditionFalse || !c.LastTransitionTime.Equal(&want) {
				t.Errorf("after relief %s = %+v, want False since %v", tt.typ, c, want)
			}
		})
	}
}

func TestReadyFalseWhileRuntimeIsDown(t *testing.T) {
	h := newHarness(t, nil)
	h.register(t)

	dockerDown := errors.New("docker version: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
	h.rt.setDown(dockerDown)
	h.clock.Step(10 * time.Second)
	h.sync(t)
	ready := h.condition(t, corev1.NodeReady)
	wantMsg := "container runtime is down: " + dockerDown.Error()
	if ready.Status != corev1.ConditionFalse || ready.Reason != "KubeletNotReady" || ready.Message != wantMsg {
		t.Errorf("Ready = %s %q %q, want False KubeletNotReady %q", ready.Status, ready.Reason, ready.Message, wantMsg)
	}
	if want := at(10 * time.Second); !ready.LastTransitionTime.Equal(&want) {
		t.Errorf("Ready transition = %v, want %v", ready.LastTransitionTime, want)
	}
	if got := h.client.node(t, "n1").Status.NodeInfo.ContainerRuntimeVersion; got != "docker://20.10.24" {
		t.Errorf("containerRuntimeVersion = %q, want the last known one kept", got)
	}

	h.rt.setDown(nil)
	h.clock.Step(10 * time.Second)
	h.sync(t)
	ready = h.condition(t, corev1.NodeReady)
	if want := at(20 * time.Second); ready.Status != corev1.ConditionTrue || ready.Reason != "KubeletReady" || !ready.LastTransitionTime.Equal(&want) {
		t.Errorf("Ready = %+v, want True since %v", ready, want)
	}
	wantEvents := []string{"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady", "NodeNotReady", "NodeReady"}
	if got := h.events.reasons(); !slices.Equal(got, wantEvents) {
		t.Errorf("events = %v, want %v", got, wantEvents)
	}
	h.events.mu.Lock()
	last := h.events.got[len(h.events.got)-1]
	h.events.mu.Unlock()
	if last.Type != corev1.EventTypeNormal || last.Message != "Node n1 status is now: NodeReady" {
		t.Errorf("NodeReady event = %+v", last)
	}
}

func TestRegisterWhileRuntimeIsDown(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.setDown(errors.New("docker version: connection refused"))
	h.register(t)
	n := h.client.node(t, "n1")
	if ready := findCondition(n.Status.Conditions, corev1.NodeReady); ready.Status != corev1.ConditionFalse {
		t.Errorf("Ready = %+v, want False", ready)
	}
	if v := n.Status.NodeInfo.ContainerRuntimeVersion; v != "" {
		t.Errorf("containerRuntimeVersion = %q, want empty until the runtime answers", v)
	}
	if got := h.events.reasons(); slices.Contains(got, "NodeReady") || slices.Contains(got, "NodeNotReady") {
		t.Errorf("events = %v, want no Ready event for a node that starts not ready", got)
	}
}

func TestReadyFalseUntilThePodNetworkIsReady(t *testing.T) {
	var netErr atomic.Pointer[error]
	notYet := errors.New("the pod network is not ready")
	netErr.Store(&notYet)
	h := newHarness(t, func(c *Config) {
		c.NetworkReady = func() error { return *netErr.Load() }
	})
	h.register(t)
	h.sync(t)
	ready := h.condition(t, corev1.NodeReady)
	wantMsg := "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the pod network is not ready"
	if ready.Status != corev1.ConditionFalse || ready.Message != wantMsg {
		t.Errorf("Ready = %s %q, want False %q", ready.Status, ready.Message, wantMsg)
	}
	var none error
	netErr.Store(&none)
	h.clock.Step(10 * time.Second)
	h.sync(t)
	if ready := h.condition(t, corev1.NodeReady); ready.Status != corev1.ConditionTrue {
		t.Errorf("Ready = %s %q once the network is ready", ready.Status, ready.Message)
	}
}
