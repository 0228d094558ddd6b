package scheduler

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// matchesNodeSelectorAndAffinity is NodeAffinity's filter: the pod's
// nodeSelector and its required node affinity.
func matchesNodeSelectorAndAffinity(pod *corev1.Pod, node *corev1.Node) bool {
	for k, v := range pod.Spec.NodeSelector {
		if got, ok := node.Labels[k]; !ok || got != v {
			return false
		}
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for i := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if matchesTerm(&a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i], node) {
			return true
		}
	}
	return false
}

// matchesTerm reports whether node matches every expression and field of
// a term; a term with neither matches no node.
func matchesTerm(t *corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for i := range t.MatchExpressions {
		if !matchesRequirement(&t.MatchExpressions[i], node.Labels) {
			return false
		}
	}
	for i := range t.MatchFields {
		r := &t.MatchFields[i]
		if r.Key != "metadata.name" || (r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn) {
			return false
		}
		if !matchesRequirement(r, map[string]string{"metadata.name": node.Name}) {
			return false
		}
	}
	return true
}

func matchesRequirement(r *corev1.NodeSelectorRequirement, lbls map[string]string) bool {
	v, ok := lbls[r.Key]
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// preferredNodeAffinity is NodeAffinity's raw score: the sum of the
// weights of the preferred terms node matches.
func preferredNodeAffinity(pod *corev1.Pod, node *corev1.Node) int64 {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return 0
	}
	var sum int64
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		p := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if p.Weight != 0 && matchesTerm(&p.Preference, node) {
			sum += int64(p.Weight)
		}
	}
	return sum
}

// podTerm is a pod (anti-)affinity term, compiled.
type podTerm struct {
	topologyKey string
	namespaces  map[string]bool
	allNS       bool // an empty namespaceSelector: every namespace
	selector    labels.Selector
}

// compileTerm resolves a term of owner: its namespaces (owner's when
// neither namespaces nor namespaceSelector is set) and selector.
func compileTerm(owner *corev1.Pod, t *corev1.PodAffinityTerm, snap *snapshot) (podTerm, bool) {
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil || t.LabelSelector == nil {
		return podTerm{}, false
	}
	pt := podTerm{topologyKey: t.TopologyKey, namespaces: map[string]bool{}, selector: sel}
	for _, ns := range t.Namespaces {
		pt.namespaces[ns] = true
	}
	switch ns := t.NamespaceSelector; {
	case ns == nil:
		if len(t.Namespaces) == 0 {
			pt.namespaces[owner.Namespace] = true
		}
	case len(ns.MatchLabels) == 0 && len(ns.MatchExpressions) == 0:
		pt.allNS = true
	default:
		nsSel, err := metav1.LabelSelectorAsSelector(ns)
		if err != nil {
			return podTerm{}, false
		}
		for name, lbls := range snap.namespaceLabels {
			if nsSel.Matches(labels.Set(lbls)) {
				pt.namespaces[name] = true
			}
		}
	}
	return pt, true
}

func (t *podTerm) matches(pod *corev1.Pod) bool {
	if !t.allNS && !t.namespaces[pod.Namespace] {
		return false
	}
	return t.selector.Matches(labels.Set(pod.Labels))
}

// affinityState is InterPodAffinity's pre-computation for one pod: how
// many existing pods match each of its terms per topology value, and the
// topology values existing pods' anti-affinity forbids it.
type affinityState struct {
	affinity     []podTerm
	affinityHits []map[string]int // per term: topology value → matching pods
	affinityAny  []bool           // per term: some pod anywhere matches
	selfMatch    bool             // the pod matches all its own affinity terms
	anti         []podTerm
	antiHits     []map[string]int
	forbidden    map[string]map[string]bool // topology key → value → forbidden
}

func newAffinityState(pod *corev1.Pod, snap *snapshot) *affinityState {
	st := &affinityState{}
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			for i := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				if t, ok := compileTerm(pod, &a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i], snap); ok {
					st.affinity = append(st.affinity, t)
				}
			}
		}
		if a.PodAntiAffinity != nil {
			for i := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				if t, ok := compileTerm(pod, &a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i], snap); ok {
					st.anti = append(st.anti, t)
				}
			}
		}
	}
	for _, e := range snap.withAntiAffinity {
		ni := snap.byName[e.Spec.NodeName]
		if ni == nil {
			continue
		}
		for i := range e.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			t, ok := compileTerm(e, &e.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i], snap)
			if !ok || !t.matches(pod) {
				continue
			}
			v, ok := ni.node.Labels[t.topologyKey]
			if !ok {
				continue
			}
			if st.forbidden == nil {
				st.forbidden = map[string]map[string]bool{}
			}
			if st.forbidden[t.topologyKey] == nil {
				st.forbidden[t.topologyKey] = map[string]bool{}
			}
			st.forbidden[t.topologyKey][v] = true
		}
	}
	if len(st.affinity) == 0 && len(st.anti) == 0 {
		return st
	}
	st.affinityHits = make([]map[string]int, len(st.affinity))
	st.affinityAny = make([]bool, len(st.affinity))
	st.antiHits = make([]map[string]int, len(st.anti))
	st.selfMatch = true
	for i := range st.affinity {
		st.affinityHits[i] = map[string]int{}
		if !st.affinity[i].matches(pod) {
			st.selfMatch = false
		}
	}
	for i := range st.anti {
		st.antiHits[i] = map[string]int{}
	}
	for _, ni := range snap.nodes {
		for _, p := range ni.pods {
			for i := range st.affinity {
				if st.affinity[i].matches(p) {
					st.affinityAny[i] = true
					if v, ok := ni.node.Labels[st.affinity[i].topologyKey]; ok {
						st.affinityHits[i][v]++
					}
				}
			}
			for i := range st.anti {
				if st.anti[i].matches(p) {
					if v, ok := ni.node.Labels[st.anti[i].topologyKey]; ok {
						st.antiHits[i][v]++
					}
				}
			}
		}
	}
	return st
}

// filter is InterPodAffinity's filter for one node: a failure reason, or
// "".
func (st *affinityState) filter(ni *nodeInfo) (reason string, unresolvable bool) {
	lbls := ni.node.Labels
	for key, values := range st.forbidden {
		if v, ok := lbls[key]; ok && values[v] {
			return reasonExistingAntiAffine, false
		}
	}
	for i := range st.anti {
		if v, ok := lbls[st.anti[i].topologyKey]; ok && st.antiHits[i][v] > 0 {
			return reasonPodAntiAffinity, false
		}
	}
	if len(st.affinity) == 0 {
		return "", false
	}
	noneAnywhere := true
	for i := range st.affinity {
		if st.affinityAny[i] {
			noneAnywhere = false
		}
	}
	// The first pod of a group that is affine to itself may go anywhere
	// the topology keys exist.
	if noneAnywhere && st.selfMatch {
		for i := range st.affinity {
			if _, ok := lbls[st.affinity[i].topologyKey]; !ok {
				return reasonPodAffinity, true
			}
		}
		return "", false
	}
	for i := range st.affinity {
		v, ok := lbls[st.affinity[i].topologyKey]
		if !ok || st.affinityHits[i][v] == 0 {
			return reasonPodAffinity, true
		}
	}
	return "", false
}
