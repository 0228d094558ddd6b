package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// maxNodeScore is the score of the best node for each plugin.
const maxNodeScore = 100

// Default plugin weights of kube-scheduler.
const (
	weightTaintToleration   = 3
	weightNodeAffinity      = 2
	weightLeastAllocated    = 1
	weightBalancedAllocated = 1
)

// score ranks feasible nodes for a pod: each plugin's scores normalised to
// 0-100, weighted and summed as kube-scheduler does.
func score(ps *podState, nodes []*nodeInfo) []int64 {
	total := make([]int64, len(nodes))
	affinity := make([]int64, len(nodes))
	taints := make([]int64, len(nodes))
	var podAffinity []int64
	if ps.podAffinity != nil {
		podAffinity = make([]int64, len(nodes))
	}
	for i, ni := range nodes {
		total[i] = weightLeastAllocated*leastAllocated(ps.nonZero, ni) +
			weightBalancedAllocated*balancedAllocation(ps.nonZero, ni)
		affinity[i] = preferredNodeAffinity(ps.pod, ni.node)
		taints[i] = intolerablePreferNoSchedule(ni.taints, ps.pod.Spec.Tolerations)
		if podAffinity != nil {
			podAffinity[i] = nodePodAffinityScore(ps.podAffinity, ni.node)
		}
	}
	normalizeMinMax(podAffinity)
	var spread []int64
	if cs := newSpreadState(ps.pod, ps.snap, corev1.ScheduleAnyway); cs != nil {
		raw := make([]float64, len(nodes))
		for i, ni := range nodes {
			raw[i] = spreadScore(cs, ni.node)
		}
		spread = normalizeSpread(raw)
	}
	normalize(affinity, false)
	normalize(taints, true)
	for i := range nodes {
		total[i] += weightNodeAffinity*affinity[i] + weightTaintToleration*taints[i]
		if podAffinity != nil {
			total[i] += weightInterPodAffinity * podAffinity[i]
		}
		if spread != nil {
			total[i] += weightPodTopologySpread * spread[i]
		}
	}
	return total
}

// leastAllocated is NodeResourcesFit's LeastAllocated score over cpu and
// memory (weight 1 each): the share left free once the pod is placed.
func leastAllocated(pod resources, ni *nodeInfo) int64 {
	free := func(req, alloc int64) int64 {
		if alloc <= 0 || req > alloc {
			return 0
		}
		return (alloc - req) * maxNodeScore / alloc
	}
	cpu := free(ni.nonZero.milliCPU+pod.milliCPU, ni.allocatable.milliCPU)
	mem := free(ni.nonZero.memory+pod.memory, ni.allocatable.memory)
	return (cpu + mem) / 2
}

// balancedAllocation is NodeResourcesBalancedAllocation: nodes whose cpu
// and memory would be used in similar shares score higher.
func balancedAllocation(pod resources, ni *nodeInfo) int64 {
	share := func(req, alloc int64) float64 {
		if alloc <= 0 {
			return 1
		}
		return min(float64(req)/float64(alloc), 1)
	}
	cpu := share(ni.nonZero.milliCPU+pod.milliCPU, ni.allocatable.milliCPU)
	mem := share(ni.nonZero.memory+pod.memory, ni.allocatable.memory)
	d := cpu - mem
	if d < 0 {
		d = -d
	}
	return int64((1 - d/2) * maxNodeScore)
}

// intolerablePreferNoSchedule is TaintToleration's raw score: the
// PreferNoSchedule taints the pod does not tolerate.
func intolerablePreferNoSchedule(taints []corev1.Taint, tols []corev1.Toleration) int64 {
	var prefer []corev1.Toleration
	for _, t := range tols {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			prefer = append(prefer, t)
		}
	}
	var n int64
	for i := range taints {
		if taints[i].Effect == corev1.TaintEffectPreferNoSchedule && !tolerated(&taints[i], prefer) {
			n++
		}
	}
	return n
}

// normalize scales scores to 0-100 by the highest (reversed: the highest
// scores 0), as kube-scheduler's DefaultNormalizeScore.
func normalize(scores []int64, reverse bool) {
	var hi int64
	for _, s := range scores {
		hi = max(hi, s)
	}
	for i, s := range scores {
		switch {
		case hi == 0 && reverse:
			scores[i] = maxNodeScore
		case hi == 0:
			scores[i] = 0
		case reverse:
			scores[i] = maxNodeScore - s*maxNodeScore/hi
		default:
			scores[i] = s * maxNodeScore / hi
		}
	}
}
