package tables

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestNodeRows(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: s},
		}
	}
	cases := []struct {
		name          string
		labels        map[string]string
		unschedulable bool
		conditions    []corev1.NodeCondition
		status, roles string
	}{
		{"ready worker", nil, false, ready(corev1.ConditionTrue), "Ready", "<none>"},
		{"not ready", nil, false, ready(corev1.ConditionFalse), "NotReady", "<none>"},
		{"ready unknown", nil, false, ready(corev1.ConditionUnknown), "NotReady", "<none>"},
		{"no ready condition", nil, false, nil, "Unknown", "<none>"},
		{"cordoned", nil, true, ready(corev1.ConditionTrue), "Ready,SchedulingDisabled", "<none>"},
		{"cordoned without status", nil, true, nil, "Unknown,SchedulingDisabled", "<none>"},
		{"control plane", map[string]string{
			"node-role.kubernetes.io/control-plane": "true",
			"node-role.kubernetes.io/etcd":          "",
			"kubernetes.io/hostname":                "server-1",
		}, false, ready(corev1.ConditionTrue), "Ready", "control-plane,etcd"},
		{"legacy role label", map[string]string{
			"kubernetes.io/role":             "master",
			"node-role.kubernetes.io/worker": "",
			"node-role.kubernetes.io/":       "",
		}, false, ready(corev1.ConditionTrue), "Ready", "master,worker"},
		{"empty legacy role", map[string]string{"kubernetes.io/role": ""}, false, ready(corev1.ConditionTrue), "Ready", "<none>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: meta("node-1", 26*time.Hour), Spec: corev1.NodeSpec{Unschedulable: c.unschedulable},
				Status: corev1.NodeStatus{Conditions: c.conditions, NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2+mizzen1"}}}
			node.Labels = c.labels
			wantRow(t, nodesGR, node, "node-1", c.status, c.roles, "26h", "v1.37.2+mizzen1",
				"<none>", "<none>", "<unknown>", "<unknown>", "<unknown>")
		})
	}
}

func TestNodeWideColumns(t *testing.T) {
	node := &corev1.Node{ObjectMeta: meta("node-2", 9*24*time.Hour), Status: corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: "node-2"},
			{Type: corev1.NodeInternalIP, Address: "192.168.1.12"},
			{Type: corev1.NodeInternalIP, Address: "fd00::12"},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.12"},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          "v1.37.2",
			OSImage:                 "Debian GNU/Linux 13 (trixie)",
			KernelVersion:           "6.12.0-1-amd64",
			ContainerRuntimeVersion: "docker://28.1.1",
		},
	}}
	wantRow(t, nodesGR, node, "node-2", "Ready", "<none>", "9d", "v1.37.2",
		"192.168.1.12", "203.0.113.12", "Debian GNU/Linux 13 (trixie)", "6.12.0-1-amd64", "docker://28.1.1")
}
