package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// numFeasibleNodesToFind is how many feasible nodes are enough to score,
// kube-scheduler's adaptive percentageOfNodesToScore: all of a small
// cluster, at least 100, a shrinking share of a large one.
func numFeasibleNodesToFind(n int) int {
	if n < 100 {
		return n
	}
	pct := max(50-n/125, 5)
	return max(n*pct/100, 100)
}

// schedulePod picks a node for pod in snap, or says why none fits.
func (s *Scheduler) schedulePod(snap *snapshot, pod *corev1.Pod) (string, *fitError) {
	n := len(snap.nodes)
	if n == 0 {
		return "", &fitError{}
	}
	ps := newPodState(pod, snap)
	want := numFeasibleNodesToFind(n)
	feasible := make([]*nodeInfo, 0, want)
	var fe *fitError
	start := s.nextStart % n
	processed := 0
	for ; processed < n && len(feasible) < want; processed++ {
		ni := snap.nodes[(start+processed)%n]
		r := filter(ps, ni)
		if r.reasons == nil {
			feasible = append(feasible, ni)
			continue
		}
		if fe == nil {
			fe = &fitError{numNodes: n, reasons: map[string]int{}}
		}
		for _, reason := range r.reasons {
			fe.reasons[reason]++
		}
		if r.unresolvable {
			fe.unresolvable++
		}
	}
	s.nextStart = (start + processed) % n
	switch len(feasible) {
	case 0:
		return "", fe
	case 1:
		return feasible[0].node.Name, nil
	}
	ps.podAffinity = podAffinityScores(pod, snap)
	scores := score(ps, feasible)
	best, ties := 0, 0
	for i, sc := range scores {
		switch {
		case sc > scores[best]:
			best, ties = i, 1
		case sc == scores[best]:
			ties++
			if s.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return feasible[best].node.Name, nil
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t) }
