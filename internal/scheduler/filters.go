package scheduler

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Failure reasons, worded as kube-scheduler's plugins word them.
const (
	reasonNodeName           = "node(s) didn't match the requested node name"
	reasonUnschedulable      = "node(s) were unschedulable"
	reasonNodeAffinity       = "node(s) didn't match Pod's node affinity/selector"
	reasonNodePorts          = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods        = "Too many pods"
	reasonPodAffinity        = "node(s) didn't match pod affinity rules"
	reasonPodAntiAffinity    = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAffine = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// filterResult is why a node cannot take a pod (nil reasons: it can).
// unresolvable says preemption cannot help (as kube-scheduler's
// UnschedulableAndUnresolvable).
type filterResult struct {
	reasons      []string
	unresolvable bool
}

// podState is what the filters and scores compute once per pod.
type podState struct {
	pod      *corev1.Pod
	requests resources
	nonZero  resources
	ports    []hostPort
	affinity *affinityState
	spread   []spreadConstraint
	// podAffinity is InterPodAffinity's raw score by topology key and
	// value, computed when the pod is scored.
	podAffinity map[string]map[string]int64
	snap        *snapshot
}

func newPodState(pod *corev1.Pod, snap *snapshot) *podState {
	return &podState{pod: pod, snap: snap, requests: podRequests(pod, false), nonZero: podRequests(pod, true),
		ports: podHostPorts(pod), affinity: newAffinityState(pod, snap), spread: newSpreadState(pod, snap, corev1.DoNotSchedule)}
}

// filter runs the filters in kube-scheduler's order and returns the first
// failure.
func filter(ps *podState, ni *nodeInfo) filterResult {
	pod, node := ps.pod, ni.node
	if !fitsUnschedulable(pod, node) {
		return filterResult{reasons: []string{reasonUnschedulable}, unresolvable: true}
	}
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != node.Name {
		return filterResult{reasons: []string{reasonNodeName}, unresolvable: true}
	}
	if t, ok := untoleratedTaint(ni.taints, pod.Spec.Tolerations); ok {
		return filterResult{reasons: []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}, unresolvable: true}
	}
	if !matchesNodeSelectorAndAffinity(pod, node) {
		return filterResult{reasons: []string{reasonNodeAffinity}, unresolvable: true}
	}
	if !fitsPorts(ps.ports, ni.ports) {
		return filterResult{reasons: []string{reasonNodePorts}}
	}
	if r := fitsResources(ps.requests, ni); len(r) > 0 {
		return filterResult{reasons: r}
	}
	if r, unresolvable := filterSpread(ps.spread, node); r != "" {
		return filterResult{reasons: []string{r}, unresolvable: unresolvable}
	}
	if r, unresolvable := ps.affinity.filter(ni); r != "" {
		return filterResult{reasons: []string{r}, unresolvable: unresolvable}
	}
	return filterResult{}
}

// fitsUnschedulable is NodeUnschedulable: a cordoned node takes only pods
// that tolerate its unschedulable taint.
func fitsUnschedulable(pod *corev1.Pod, node *corev1.Node) bool {
	if !node.Spec.Unschedulable {
		return true
	}
	t := corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	return tolerated(&t, pod.Spec.Tolerations)
}

// untoleratedTaint is TaintToleration: the first NoSchedule or NoExecute
// taint that no toleration tolerates.
func untoleratedTaint(taints []corev1.Taint, tols []corev1.Toleration) (corev1.Taint, bool) {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(t, tols) {
			return *t, true
		}
	}
	return corev1.Taint{}, false
}

func tolerated(t *corev1.Taint, tols []corev1.Toleration) bool {
	for i := range tols {
		if toleratesTaint(&tols[i], t) {
			return true
		}
	}
	return false
}

// toleratesTaint matches a toleration to a taint as Kubernetes does: an
// empty effect matches every effect, an empty key with Exists every key.
func toleratesTaint(tol *corev1.Toleration, t *corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case "", corev1.TolerationOpEqual:
		return tol.Key != "" && tol.Value == t.Value
	case corev1.TolerationOpExists:
		return true
	case corev1.TolerationOpGt, corev1.TolerationOpLt:
		a, err1 := strconv.ParseInt(t.Value, 10, 64)
		b, err2 := strconv.ParseInt(tol.Value, 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if tol.Operator == corev1.TolerationOpGt {
			return a > b
		}
		return a < b
	}
	return false
}

// fitsPorts is NodePorts.
func fitsPorts(want, used []hostPort) bool {
	for _, w := range want {
		for _, u := range used {
			if w.conflicts(u) {
				return false
			}
		}
	}
	return true
}

// fitsResources is NodeResourcesFit: every shortage, in Kubernetes' order.
func fitsResources(req resources, ni *nodeInfo) []string {
	var out []string
	if int64(len(ni.pods))+1 > ni.allowedPods {
		out = append(out, reasonTooManyPods)
	}
	if req.milliCPU > 0 && req.milliCPU > ni.allocatable.milliCPU-ni.requested.milliCPU {
		out = append(out, "Insufficient cpu")
	}
	if req.memory > 0 && req.memory > ni.allocatable.memory-ni.requested.memory {
		out = append(out, "Insufficient memory")
	}
	if req.ephemeral > 0 && req.ephemeral > ni.allocatable.ephemeral-ni.requested.ephemeral {
		out = append(out, "Insufficient ephemeral-storage")
	}
	return out
}
