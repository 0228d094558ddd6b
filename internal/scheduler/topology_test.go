package scheduler

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTopologySpreadDoNotSchedule(t *testing.T) {
	spread := func(maxSkew int32) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: maxSkew, TopologyKey: "zone",
				WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}
	}
	nodes := []*corev1.Node{
		makeNode("n1", "2", "4Gi", 110, withLabels("zone", "a")),
		makeNode("n2", "2", "4Gi", 110, withLabels("zone", "a")),
		makeNode("n3", "2", "4Gi", 110, withLabels("zone", "b")),
		makeNode("n4", "2", "4Gi", 110),
	}
	web := func(node string) *corev1.Pod { return makePod("w", "", "", onNode(node), withPodLabels("app", "web")) }
	tests := []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     string // node, or the failure message's first sentence
	}{
		{"goes to the emptier zone", []*corev1.Pod{web("n1"), web("n2")}, makePod("p", "", "", withPodLabels("app", "web"), spread(1)), "n3"},
		{"a larger skew allows either", []*corev1.Pod{web("n1")}, makePod("p", "", "", withPodLabels("app", "web"), spread(5)), ""},
		{"nowhere when every zone is at skew", []*corev1.Pod{web("n1"), web("n3")},
			makePod("p", "", "", withPodLabels("app", "web"), spread(0)),
			"0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label), 3 node(s) didn't match pod topology spread constraints."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Scheduler{rand: rand.New(rand.NewPCG(1, 2))}
			got, fe := s.schedulePod(snapshotOf(nodes, tc.existing...), tc.pod)
			switch {
			case tc.want == "" && (fe != nil || got == "n4"):
				t.Fatalf("schedule = %q, %v", got, fe)
			case len(tc.want) > 3 && (fe == nil || fe.Error()[:len(tc.want)] != tc.want):
				t.Fatalf("schedule = %q, %v; want %q", got, fe, tc.want)
			case len(tc.want) <= 3 && tc.want != "" && got != tc.want:
				t.Fatalf("schedule = %q, %v; want %q", got, fe, tc.want)
			}
		})
	}
}

func TestTopologySpreadScheduleAnywayPrefersEmptierDomain(t *testing.T) {
	nodes := []*corev1.Node{
		makeNode("n1", "2", "4Gi", 110, withLabels("zone", "a")),
		makeNode("n2", "2", "4Gi", 110, withLabels("zone", "b")),
	}
	existing := []*corev1.Pod{
		makePod("w1", "", "", onNode("n1"), withPodLabels("app", "web")),
		makePod("w2", "", "", onNode("n1"), withPodLabels("app", "web")),
		makePod("big", "1", "2Gi", onNode("n2")),
	}
	pod := makePod("p", "", "", withPodLabels("app", "web"), func(p *corev1.Pod) {
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone",
			WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	})
	s := &Scheduler{rand: rand.New(rand.NewPCG(1, 2))}
	if got, fe := s.schedulePod(snapshotOf(nodes, existing...), pod); got != "n2" {
		t.Fatalf("schedule = %q, %v; want n2", got, fe)
	}
	pod.Spec.TopologySpreadConstraints = nil
	if got, fe := s.schedulePod(snapshotOf(nodes, existing...), pod); got != "n1" {
		t.Fatalf("without the constraint: %q, %v; want n1 (least allocated)", got, fe)
	}
}
