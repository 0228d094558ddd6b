package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// hardPodAffinityWeight is what an existing pod's required affinity to
// the incoming pod adds, as kube-scheduler's default.
const hardPodAffinityWeight = 1

// weightInterPodAffinity is InterPodAffinity's default score weight.
const weightInterPodAffinity = 2

type weightedTerm struct {
	podTerm
	weight int64
}

func preferredTerms(owner *corev1.Pod, terms []corev1.WeightedPodAffinityTerm, sign int64, snap *snapshot) []weightedTerm {
	var out []weightedTerm
	for i := range terms {
		if t, ok := compileTerm(owner, &terms[i].PodAffinityTerm, snap); ok && terms[i].Weight != 0 {
			out = append(out, weightedTerm{t, sign * int64(terms[i].Weight)})
		}
	}
	return out
}

// scoringTerms are a pod's preferred affinity (positive) and
// anti-affinity (negative) terms, plus, for an existing pod, its required
// affinity terms at hardPodAffinityWeight.
func scoringTerms(pod *corev1.Pod, existing bool, snap *snapshot) []weightedTerm {
	a := pod.Spec.Affinity
	if a == nil {
		return nil
	}
	var out []weightedTerm
	if a.PodAffinity != nil {
		out = append(out, preferredTerms(pod, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, 1, snap)...)
		if existing {
			for i := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				if t, ok := compileTerm(pod, &a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i], snap); ok {
					out = append(out, weightedTerm{t, hardPodAffinityWeight})
				}
			}
		}
	}
	if a.PodAntiAffinity != nil {
		out = append(out, preferredTerms(pod, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, -1, snap)...)
	}
	return out
}

// podAffinityScores is InterPodAffinity's raw score per topology key and
// value: the weights of the incoming pod's preferred terms that existing
// pods there match, and of existing pods' terms that the incoming pod
// matches. Nil when no term is involved.
func podAffinityScores(pod *corev1.Pod, snap *snapshot) map[string]map[string]int64 {
	own := scoringTerms(pod, false, snap)
	var out map[string]map[string]int64
	add := func(node *corev1.Node, t *weightedTerm) {
		v, ok := node.Labels[t.topologyKey]
		if !ok {
			return
		}
		if out == nil {
			out = map[string]map[string]int64{}
		}
		if out[t.topologyKey] == nil {
			out[t.topologyKey] = map[string]int64{}
		}
		out[t.topologyKey][v] += t.weight
	}
	visit := func(e *corev1.Pod, ni *nodeInfo) {
		for i := range own {
			if own[i].matches(e) {
				add(ni.node, &own[i])
			}
		}
		if e.Spec.Affinity == nil {
			return
		}
		theirs := scoringTerms(e, true, snap)
		for i := range theirs {
			if theirs[i].matches(pod) {
				add(ni.node, &theirs[i])
			}
		}
	}
	if len(own) > 0 {
		for _, ni := range snap.nodes {
			for _, e := range ni.pods {
				visit(e, ni)
			}
		}
		return out
	}
	for _, e := range snap.withPodAffinity {
		if ni := snap.byName[e.Spec.NodeName]; ni != nil {
			visit(e, ni)
		}
	}
	return out
}

// nodePodAffinityScore sums a node's topology domains' raw scores.
func nodePodAffinityScore(scores map[string]map[string]int64, node *corev1.Node) int64 {
	var sum int64
	for key, byValue := range scores {
		if v, ok := node.Labels[key]; ok {
			sum += byValue[v]
		}
	}
	return sum
}

// normalizeMinMax scales scores that may be negative to 0-100 between the
// lowest and the highest, as InterPodAffinity does.
func normalizeMinMax(scores []int64) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi == lo {
			scores[i] = 0
			continue
		}
		scores[i] = maxNodeScore * (s - lo) / (hi - lo)
	}
}
