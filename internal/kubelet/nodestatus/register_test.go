package nodestatus

import (
	"net/netip"
	goruntime "runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

var t0 = time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)

// harness is an Agent wired to fakes, driven by a fake clock.
type harness struct {
	client *fakeClient
	host   *fakeHost
	rt     *downRuntime
	clock  *clocktesting.FakeClock
	events *events
	agent  *Agent
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{
		client: newFakeClient(),
		host:   newFakeHost(),
		rt:     &downRuntime{Runtime: fake.New()},
		clock:  clocktesting.NewFakeClock(t0),
		events: &events{},
	}
	cfg := Config{
		NodeName: "n1",
		Version:  "v1.37.2+mizzen",
		Runtime:  h.rt,
		Client:   h.client,
		Event:    h.events.record,
		Host:     h.host,
		Clock:    h.clock,
		Log:      testLog(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.agent = a
	return h
}

func (h *harness) register(t *testing.T) {
	t.Helper()
	if err := h.agent.tryRegister(t.Context()); err != nil {
		t.Fatalf("register: %v", err)
	}
}

func quantities(l corev1.ResourceList) map[corev1.ResourceName]string {
	out := map[corev1.ResourceName]string{}
	for k, v := range l {
		out[k] = v.String()
	}
	return out
}

func TestRegisterCreatesNode(t *testing.T) {
	arch := goruntime.GOARCH
	taint := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name          string
		cfg           func(*Config)
		wantLabels    map[string]string
		wantTaints    []corev1.Taint
		wantAddresses []corev1.NodeAddress
		wantPods      string
		wantPort      int32
	}{{
		name: "worker with node IPs, labels and taints",
		cfg: func(c *Config) {
			c.NodeIPs = []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::3")}
			c.Labels = map[string]string{"topology.kubernetes.io/zone": "a"}
			c.Taints = []corev1.Taint{taint}
		},
		wantLabels: map[string]string{
			"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
			"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
			"node.kubernetes.io/instance-type": "mizzen", "topology.kubernetes.io/zone": "a",
		},
		wantTaints: []corev1.Taint{taint},
		wantAddresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.1.2.3"},
			{Type: corev1.NodeInternalIP, Address: "fd00::3"},
			{Type: corev1.NodeHostName, Address: "n1"},
		},
		wantPods: "110",
		wantPort: 10250,
	}, {
		name: "control plane on the default route's address",
		cfg: func(c *Config) {
			c.ControlPlane = true
			c.MaxPods = 50
			c.KubeletPort = 10251
		},
		wantLabels: map[string]string{
			"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
			"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
			"node.kubernetes.io/instance-type":      "mizzen",
			"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true",
		},
		wantAddresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.7"},
			{Type: corev1.NodeHostName, Address: "n1"},
		},
		wantPods: "50",
		wantPort: 10251,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			h.register(t)
			n := h.client.node(t, "n1")

			if !equality.Semantic.DeepEqual(n.Labels, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", n.Labels, tt.wantLabels)
			}
			if !equality.Semantic.DeepEqual(n.Spec.Taints, tt.wantTaints) {
				t.Errorf("taints = %v, want %v", n.Spec.Taints, tt.wantTaints)
			}
			wantCap := map[corev1.ResourceName]string{
				"cpu": "4", "memory": "16318596Ki", "pods": tt.wantPods, "ephemeral-storage": "100Gi",
			}
			if got := quantities(n.Status.Capacity); !equality.Semantic.DeepEqual(got, wantCap) {
				t.Errorf("capacity = %v, want %v", got, wantCap)
			}
			// 100Mi hard eviction threshold and 10% of the disk are not allocatable.
			wantAlloc := map[corev1.ResourceName]string{
				"cpu": "4", "memory": "16216196Ki", "pods": tt.wantPods, "ephemeral-storage": "90Gi",
			}
			if got := quantities(n.Status.Allocatable); !equality.Semantic.DeepEqual(got, wantAlloc) {
				t.Errorf("allocatable = %v, want %v", got, wantAlloc)
			}
			if !equality.Semantic.DeepEqual(n.Status.Addresses, tt.wantAddresses) {
				t.Errorf("addresses = %v, want %v", n.Status.Addresses, tt.wantAddresses)
			}
			if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != tt.wantPort {
				t.Errorf("kubelet port = %d, want %d", got, tt.wantPort)
			}
			wantInfo := corev1.NodeSystemInfo{
				MachineID: "0123456789abcdef0123456789abcdef", SystemUUID: "4c4c4544-0042-3510-8051-b4c04f4e4432",
				BootID: "ede2ad39-71b8-4060-a28e-900dbb7853b7", KernelVersion: "6.1.0-13-amd64",
				OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "docker://20.10.24",
				KubeletVersion: "v1.37.2+mizzen", KubeProxyVersion: "v1.37.2+mizzen",
				OperatingSystem: "linux", Architecture: arch,
			}
			if n.Status.NodeInfo != wantInfo {
				t.Errorf("nodeInfo = %+v, want %+v", n.Status.NodeInfo, wantInfo)
			}
			wantConds := []corev1.NodeCondition{
				{Type: "MemoryPressure", Status: "False", Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
				{Type: "DiskPressure", Status: "False", Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
				{Type: "PIDPressure", Status: "False", Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
				{Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "kubelet is posting ready status"},
			}
			for i := range wantConds {
				wantConds[i].LastHeartbeatTime = metav1.NewTime(t0)
				wantConds[i].LastTransitionTime = metav1.NewTime(t0)
			}
			if !equality.Semantic.DeepEqual(n.Status.Conditions, wantConds) {
				t.Errorf("conditions = %+v, want %+v", n.Status.Conditions, wantConds)
			}
			wantEvents := []string{"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"}
			if got := h.events.reasons(); !slices.Equal(got, wantEvents) {
				t.Errorf("events = %v, want %v", got, wantEvents)
			}
			if got := h.agent.Node(); got == nil || got.UID != n.UID {
				t.Errorf("Node() = %v, want the created node", got)
			}
		})
	}
}

func TestRegisterAdoptsExistingNode(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Labels = map[string]string{"topology.kubernetes.io/zone": "b"}
		c.Taints = []corev1.Taint{{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}}
	})
	stale := metav1.NewTime(t0.Add(-time.Hour))
	h.client.put(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{
			"kubernetes.io/hostname": "n1", "team": "x", "node.kubernetes.io/instance-type": "old",
		}},
		Spec: corev1.NodeSpec{
			PodCIDR: "10.42.0.0/24", PodCIDRs: []string{"10.42.0.0/24"},
			Taints: []corev1.Taint{{Key: "maintenance", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
				LastHeartbeatTime: stale, LastTransitionTime: stale},
			{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated",
				LastHeartbeatTime: stale, LastTransitionTime: stale},
		}},
	})
	h.register(t)

	n := h.client.node(t, "n1")
	for k, v := range map[string]string{
		"team": "x", "node.kubernetes.io/instance-type": "mizzen", "topology.kubernetes.io/zone": "b", "kubernetes.io/os": "linux",
	} {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	if n.Spec.PodCIDR != "10.42.0.0/24" || len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Key != "maintenance" {
		t.Errorf("spec = %+v, want podCIDR and taints kept, no registration taints", n.Spec)
	}
	if got := h.events.reasons(); !slices.Equal(got, []string{"Starting"}) {
		t.Errorf("events after adopting = %v, want [Starting]", got)
	}

	// The first status sync writes at once: the stored status is not ours.
	if err := h.agent.syncStatus(t.Context()); err != nil {
		t.Fatalf("syncStatus: %v", err)
	}
	if got := len(h.client.callsOf("Patch", "Node")); got != 1 {
		t.Fatalf("status patches = %d, want 1", got)
	}
	n = h.client.node(t, "n1")
	var types []corev1.NodeConditionType
	for _, c := range n.Status.Conditions {
		types = append(types, c.Type)
	}
	wantTypes := []corev1.NodeConditionType{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "NetworkUnavailable"}
	if !slices.Equal(types, wantTypes) {
		t.Errorf("condition types = %v, want %v", types, wantTypes)
	}
	if ready := findCondition(n.Status.Conditions, corev1.NodeReady); ready.Status != corev1.ConditionTrue || !ready.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
		t.Errorf("Ready = %+v, want True since now", ready)
	}
	if len(n.Status.Addresses) != 2 || n.Spec.PodCIDR != "10.42.0.0/24" {
		t.Errorf("addresses = %v podCIDR = %q after status patch", n.Status.Addresses, n.Spec.PodCIDR)
	}
	wantEvents := []string{"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"}
	if got := h.events.reasons(); !slices.Equal(got, wantEvents) {
		t.Errorf("events = %v, want %v", got, wantEvents)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{NodeName: "n1", Client: newFakeClient(), Runtime: fake.New()}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no node name", func(c *Config) { c.NodeName = "" }},
		{"upper-case node name", func(c *Config) { c.NodeName = "Node1" }},
		{"no client", func(c *Config) { c.Client = nil }},
		{"no runtime", func(c *Config) { c.Runtime = nil }},
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(valid config): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
