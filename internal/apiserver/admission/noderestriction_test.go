package admission

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

func TestNodeRestriction(t *testing.T) {
	nodeA := authn.WithUser(context.Background(), authn.User{Name: "system:node:node-a", Groups: []string{pki.NodesGroup}})
	server := authn.WithUser(context.Background(), authn.User{Name: "system:node:node-a", Groups: []string{pki.NodesGroup, pki.ControlPlaneNodesGroup}})
	admin := authn.WithUser(context.Background(), authn.User{Name: "system:admin", Groups: []string{"system:masters"}})
	node := func(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	}
	pod := func(nodeName string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Spec: corev1.PodSpec{NodeName: nodeName}}
	}
	lease := func(ns, name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	restricted := map[string]string{NodeRestrictionLabelPrefix + "pool": "gpu"}
	taint := corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		op       registry.Operation
		obj, old runtime.Object
		allowed  bool
	}{
		{"node creates itself", nodeA, registry.Create, node("node-a", map[string]string{"a": "b"}, taint), nil, true},
		{"node creates another node", nodeA, registry.Create, node("node-b", nil), nil, false},
		{"node updates another node", nodeA, registry.Update, node("node-b", nil), node("node-b", nil), false},
		{"node updates itself", nodeA, registry.Update, node("node-a", map[string]string{"x": "y"}), node("node-a", nil), true},
		{"node sets a restricted label", nodeA, registry.Create, node("node-a", restricted), nil, false},
		{"node keeps a restricted label", nodeA, registry.Update, node("node-a", restricted), node("node-a", restricted), true},
		{"node drops a restricted label", nodeA, registry.Update, node("node-a", nil), node("node-a", restricted), false},
		{"node sets a restricted label in a subdomain", nodeA, registry.Create, node("node-a", map[string]string{"pool.node-restriction.kubernetes.io/x": "y"}), nil, false},
		{"node makes itself control plane", nodeA, registry.Update, node("node-a", map[string]string{"node-role.kubernetes.io/control-plane": "true"}), node("node-a", nil), false},
		{"node registers as control plane", nodeA, registry.Create, node("node-a", map[string]string{"node-role.kubernetes.io/control-plane": "true"}), nil, false},
		{"node sets another kubernetes.io label", nodeA, registry.Create, node("node-a", map[string]string{"example.k8s.io/trusted": "true"}), nil, false},
		{"node drops an admin's kubernetes.io label", nodeA, registry.Update, node("node-a", nil), node("node-a", map[string]string{"node-role.kubernetes.io/worker": ""}), false},
		{"node sets kubelet labels", nodeA, registry.Create, node("node-a", map[string]string{
			"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
			"node.kubernetes.io/instance-type": "mizzen", "topology.kubernetes.io/zone": "a", "x.kubelet.kubernetes.io/y": "z",
			"example.com/own": "label",
		}), nil, true},
		{"server's node registers as control plane", server, registry.Create, node("node-a", map[string]string{
			"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}), nil, true},
		{"server's node sets a restricted label", server, registry.Create, node("node-a", restricted), nil, false},
		{"node changes its taints", nodeA, registry.Update, node("node-a", nil), node("node-a", nil, taint), false},
		{"admin updates any node", admin, registry.Update, node("node-b", restricted), node("node-b", nil), true},
		{"node updates status of its pod", nodeA, registry.Update, pod("node-a"), pod("node-a"), true},
		{"node updates status of another node's pod", nodeA, registry.Update, pod("node-a"), pod("node-b"), false},
		{"node updates status of a pending pod", nodeA, registry.Update, pod("node-a"), pod(""), false},
		{"node creates a pod", nodeA, registry.Create, pod("node-a"), nil, false},
		{"admin creates a pod", admin, registry.Create, pod("node-a"), nil, true},
		{"node creates its lease", nodeA, registry.Create, lease(corev1.NamespaceNodeLease, "node-a"), nil, true},
		{"node creates another lease", nodeA, registry.Create, lease(corev1.NamespaceNodeLease, "node-b"), nil, false},
		{"node renews another lease", nodeA, registry.Update, lease(corev1.NamespaceNodeLease, "node-b"), lease(corev1.NamespaceNodeLease, "node-b"), false},
		{"node creates a lease elsewhere", nodeA, registry.Create, lease("default", "node-a"), nil, false},
		{"no user", context.Background(), registry.Create, node("node-b", restricted), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NodeRestriction{}.Admit(tc.ctx, tc.op, &registry.Kind{}, tc.obj, tc.old)
			if tc.allowed && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.allowed && !apierrors.IsForbidden(err) {
				t.Errorf("got %v, want 403 Forbidden", err)
			}
		})
	}
}
