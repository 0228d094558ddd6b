package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PodTopologySpread's failure reasons.
const (
	reasonSpread        = "node(s) didn't match pod topology spread constraints"
	reasonSpreadMissing = "node(s) didn't match pod topology spread constraints (missing required label)"
)

// spreadConstraint is a DoNotSchedule topology spread constraint with the
// matching pods counted per topology value over the eligible nodes.
type spreadConstraint struct {
	key       string
	maxSkew   int32
	selfMatch int32
	counts    map[string]int32
	minMatch  int32
}

// newSpreadState counts, for each constraint of pod of the kind when, the
// pods it selects in each topology domain of the nodes the pod could go
// to (by its node selector and affinity; taints are ignored, as
// Kubernetes' default nodeTaintsPolicy).
func newSpreadState(pod *corev1.Pod, snap *snapshot, when corev1.UnsatisfiableConstraintAction) []spreadConstraint {
	var out []spreadConstraint
	var sels []labels.Selector
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != when {
			continue
		}
		ls := c.LabelSelector
		if len(c.MatchLabelKeys) > 0 && ls != nil {
			ls = ls.DeepCopy()
			for _, k := range c.MatchLabelKeys {
				if v, ok := pod.Labels[k]; ok {
					ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{
						Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v}})
				}
			}
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || ls == nil {
			sel = labels.Nothing()
		}
		sc := spreadConstraint{key: c.TopologyKey, maxSkew: c.MaxSkew, counts: map[string]int32{}}
		if sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		if c.MinDomains != nil && *c.MinDomains > 1 {
			sc.minMatch = -*c.MinDomains // resolved below
		}
		out = append(out, sc)
		sels = append(sels, sel)
	}
	if len(out) == 0 {
		return nil
	}
	for _, ni := range snap.nodes {
		if !matchesNodeSelectorAndAffinity(pod, ni.node) {
			continue
		}
		hasAll := true
		for i := range out {
			if _, ok := ni.node.Labels[out[i].key]; !ok {
				hasAll = false
			}
		}
		if !hasAll {
			continue
		}
		for i := range out {
			v := ni.node.Labels[out[i].key]
			n := out[i].counts[v]
			for _, p := range ni.pods {
				if p.Namespace == pod.Namespace && p.DeletionTimestamp == nil && sels[i].Matches(labels.Set(p.Labels)) {
					n++
				}
			}
			out[i].counts[v] = n
		}
	}
	for i := range out {
		minDomains := int32(1)
		if out[i].minMatch < 0 {
			minDomains = -out[i].minMatch
		}
		out[i].minMatch = 0
		first := true
		for _, n := range out[i].counts {
			if first || n < out[i].minMatch {
				out[i].minMatch = n
				first = false
			}
		}
		if int32(len(out[i].counts)) < minDomains {
			out[i].minMatch = 0
		}
	}
	return out
}

// filterSpread is PodTopologySpread's filter for one node.
func filterSpread(cs []spreadConstraint, node *corev1.Node) (reason string, unresolvable bool) {
	for i := range cs {
		v, ok := node.Labels[cs[i].key]
		if !ok {
			return reasonSpreadMissing, true
		}
		if cs[i].counts[v]+cs[i].selfMatch-cs[i].minMatch > cs[i].maxSkew {
			return reasonSpread, false
		}
	}
	return "", false
}

// weightPodTopologySpread is PodTopologySpread's default score weight.
const weightPodTopologySpread = 2

// spreadScore is PodTopologySpread's raw score of a node for the
// ScheduleAnyway constraints (lower is better): the matching pods of its
// domains, weighted by the log of the number of domains; -1 when the node
// lacks a topology key (it then scores 0).
func spreadScore(cs []spreadConstraint, node *corev1.Node) float64 {
	var sum float64
	for i := range cs {
		v, ok := node.Labels[cs[i].key]
		if !ok {
			return -1
		}
		sum += float64(cs[i].counts[v]+cs[i].maxSkew-1) * math.Log(float64(len(cs[i].counts)+2))
	}
	return sum
}

// normalizeSpread turns raw spread scores into 0-100, the emptiest domain
// best, as PodTopologySpread's NormalizeScore.
func normalizeSpread(raw []float64) []int64 {
	out := make([]int64, len(raw))
	lo, hi := math.MaxFloat64, 0.0
	for _, r := range raw {
		if r < 0 {
			continue
		}
		lo, hi = min(lo, r), max(hi, r)
	}
	for i, r := range raw {
		switch {
		case r < 0:
			out[i] = 0
		case hi == 0:
			out[i] = maxNodeScore
		default:
			out[i] = int64(maxNodeScore * (hi + lo - r) / hi)
		}
	}
	return out
}
