package scheduler

import (
	"fmt"
	"sort"
	"strings"
)

// Post-filter reasons: mizzen does not preempt, so it says, per node,
// what kube-scheduler's preemption would conclude for a pod without
// lower-priority victims.
const (
	preemptionNotHelpful = "Preemption is not helpful for scheduling"
	preemptionNoVictims  = "No preemption victims found for incoming pod"
)

// fitError says why no node can take a pod, in kube-scheduler's words.
type fitError struct {
	numNodes int
	// reasons counts the nodes failing for each reason.
	reasons map[string]int
	// unresolvable counts the nodes where preemption cannot help.
	unresolvable int
}

func (e *fitError) Error() string {
	if e.numNodes == 0 {
		return "no nodes available to schedule pods"
	}
	msg := fmt.Sprintf("0/%d nodes are available: %s.", e.numNodes, histogram(e.reasons))
	post := map[string]int{}
	if e.unresolvable > 0 {
		post[preemptionNotHelpful] = e.unresolvable
	}
	if n := e.numNodes - e.unresolvable; n > 0 {
		post[preemptionNoVictims] = n
	}
	return msg + fmt.Sprintf(" preemption: 0/%d nodes are available: %s.", e.numNodes, histogram(post))
}

// histogram renders "N reason" strings sorted as kube-scheduler sorts
// them (as strings), joined by ", ".
func histogram(counts map[string]int) string {
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
