package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

// NodeRestrictionLabelPrefix marks labels that nodes may not set on
// themselves, so workloads can trust them for placement.
const NodeRestrictionLabelPrefix = "node-restriction.kubernetes.io/"

// NodeRestriction limits what a node (a user system:node:<name> in
// system:nodes) may write, as Kubernetes' NodeRestriction admission plugin
// does. The authorizer decides by the request; this sees the objects:
//   - a node creates or updates only the Node of its own name, and may not
//     set, change or drop node-restriction.kubernetes.io labels or
//     kubernetes.io and k8s.io labels other than the kubelet's on it (the
//     server's own node may set node-role.kubernetes.io labels), nor
//     change its taints after creation;
//   - a node creates no pods, and updates only pods bound to it (the
//     stored pod's spec.nodeName);
//   - a node creates or updates only the Lease of its own name in
//     kube-node-lease.
//
// Writes by anyone else pass untouched.
type NodeRestriction struct{}

// Admit implements registry.Admission.
func (NodeRestriction) Admit(ctx context.Context, op registry.Operation, k *registry.Kind, obj, old runtime.Object) (registry.Reservation, error) {
	u, ok := authn.UserFrom(ctx)
	if !ok {
		return nil, nil
	}
	node, ok := pki.NodeName(u.Name, u.Groups)
	if !ok {
		return nil, nil
	}
	forbid := func(name, format string, args ...any) error {
		return apierrors.NewForbidden(k.GroupResource(), name, fmt.Errorf(format, args...))
	}
	switch o := obj.(type) {
	case *corev1.Node:
		if o.Name != node {
			return nil, forbid(o.Name, "node %q is not allowed to modify node %q", node, o.Name)
		}
		var oldNode *corev1.Node
		if op == registry.Update {
			oldNode, _ = old.(*corev1.Node)
		}
		if key, ok := restrictedLabelChange(o, oldNode, slices.Contains(u.Groups, pki.ControlPlaneNodesGroup)); ok {
			return nil, forbid(o.Name, "node %q is not allowed to modify labels: %s", node, key)
		}
		if oldNode != nil && !apiequality.Semantic.DeepEqual(o.Spec.Taints, oldNode.Spec.Taints) {
			return nil, forbid(o.Name, "node %q is not allowed to modify taints", node)
		}
	case *corev1.Pod:
		if op == registry.Create {
			return nil, forbid(o.Name, "node %q can not create pods", node)
		}
		if p, _ := old.(*corev1.Pod); p == nil || p.Spec.NodeName != node {
			return nil, forbid(o.Name, "node %q can only update pod status for pods with spec.nodeName set to itself", node)
		}
	case *coordinationv1.Lease:
		if o.Namespace != corev1.NamespaceNodeLease || o.Name != node {
			return nil, forbid(o.Name, "can only access node lease with the same name as the requesting node")
		}
	}
	return nil, nil
}

// kubeletLabels are the kubernetes.io and k8s.io labels a node may set on
// itself, as Kubernetes' kubelet allows (k8s.io/kubelet/pkg/apis).
var kubeletLabels = map[string]bool{
	"kubernetes.io/hostname":                   true,
	"topology.kubernetes.io/zone":              true,
	"topology.kubernetes.io/region":            true,
	"failure-domain.beta.kubernetes.io/zone":   true,
	"failure-domain.beta.kubernetes.io/region": true,
	"beta.kubernetes.io/instance-type":         true,
	"node.kubernetes.io/instance-type":         true,
	"kubernetes.io/os":                         true,
	"kubernetes.io/arch":                       true,
	"beta.kubernetes.io/os":                    true,
	"beta.kubernetes.io/arch":                  true,
}

// kubeletLabelNamespaces are the label namespaces (and their
// subdomains) a node may use freely.
var kubeletLabelNamespaces = []string{"kubelet.kubernetes.io", "node.kubernetes.io"}

// nodeRoleNamespace holds the node-role labels, which only a server's own
// node (a member of pki.ControlPlaneNodesGroup) may set on itself.
const nodeRoleNamespace = "node-role.kubernetes.io"

// ForbiddenNodeLabel reports whether a node may not set, change or drop key
// on itself: node-restriction.kubernetes.io labels, and kubernetes.io or
// k8s.io labels other than the kubelet's, as Kubernetes' NodeRestriction
// decides.
func ForbiddenNodeLabel(key string, controlPlane bool) bool {
	ns, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	ns = strings.ToLower(ns)
	in := func(domain string) bool { return ns == domain || strings.HasSuffix(ns, "."+domain) }
	switch {
	case in(strings.TrimSuffix(NodeRestrictionLabelPrefix, "/")):
		return true
	case !in("kubernetes.io") && !in("k8s.io"), kubeletLabels[key]:
		return false
	case controlPlane && ns == nodeRoleNamespace:
		return false
	}
	for _, d := range kubeletLabelNamespaces {
		if in(d) {
			return false
		}
	}
	return true
}

// restrictedLabelChange returns a label n sets, changes or drops compared
// with old (nil on create) that the node may not (see ForbiddenNodeLabel).
func restrictedLabelChange(n, old *corev1.Node, controlPlane bool) (string, bool) {
	var before map[string]string
	if old != nil {
		before = old.Labels
	}
	for key, value := range n.Labels {
		if v, ok := before[key]; (!ok || v != value) && ForbiddenNodeLabel(key, controlPlane) {
			return key, true
		}
	}
	for key := range before {
		if _, ok := n.Labels[key]; !ok && ForbiddenNodeLabel(key, controlPlane) {
			return key, true
		}
	}
	return "", false
}

// Release implements registry.Admission.
func (NodeRestriction) Release(*registry.Kind, runtime.Object) {}
