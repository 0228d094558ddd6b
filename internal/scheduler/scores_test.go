package scheduler

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestScoresPickTheBestNode(t *testing.T) {
	preferZone := func(zone string, weight int32) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: weight,
					Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
						{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zone}}}}}}}}
		}
	}
	preferPods := func(anti bool, kv ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			terms := []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}}}}
			if anti {
				p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: terms}}
			} else {
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: terms}}
			}
		}
	}
	tests := []struct {
		name     string
		nodes    []*corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     string
	}{
		{"least allocated", []*corev1.Node{makeNode("n1", "2", "4Gi", 110), makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("a", "1", "1Gi", onNode("n1"))}, makePod("p", "100m", "100Mi"), "n2"},
		{"pods without requests spread", []*corev1.Node{makeNode("n1", "2", "4Gi", 110), makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("a", "", "", onNode("n2")), makePod("b", "", "", onNode("n2"))}, makePod("p", "", ""), "n1"},
		{"balanced allocation", []*corev1.Node{makeNode("n1", "4", "4Gi", 110), makeNode("n2", "4", "4Gi", 110)},
			[]*corev1.Pod{makePod("a", "2", "", onNode("n1")), makePod("b", "", "2Gi", onNode("n2"))}, makePod("p", "", "2Gi"), "n1"},
		{"preferred node affinity", []*corev1.Node{makeNode("n1", "2", "4Gi", 110, withLabels("zone", "a")),
			makeNode("n2", "2", "4Gi", 110, withLabels("zone", "b"))},
			[]*corev1.Pod{makePod("a", "500m", "1Gi", onNode("n2"))}, makePod("p", "", "", preferZone("b", 50)), "n2"},
		{"prefer no schedule", []*corev1.Node{makeNode("n1", "2", "4Gi", 110, withTaint("k", "v", corev1.TaintEffectPreferNoSchedule)),
			makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("a", "500m", "1Gi", onNode("n2"))}, makePod("p", "", ""), "n2"},
		{"prefer no schedule tolerated", []*corev1.Node{makeNode("n1", "2", "4Gi", 110, withTaint("k", "v", corev1.TaintEffectPreferNoSchedule)),
			makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("a", "500m", "1Gi", onNode("n2"))}, makePod("p", "", "", withToleration("k", "v", corev1.TaintEffectPreferNoSchedule)), "n1"},
		{"preferred pod affinity", []*corev1.Node{makeNode("n1", "2", "4Gi", 110), makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("db", "1", "2Gi", onNode("n2"), withPodLabels("app", "db"))}, makePod("p", "", "", preferPods(false, "app", "db")), "n2"},
		{"preferred pod anti-affinity", []*corev1.Node{makeNode("n1", "2", "4Gi", 110), makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("web", "", "", onNode("n2"), withPodLabels("app", "web")), makePod("x", "1", "2Gi", onNode("n1"))},
			makePod("p", "", "", withPodLabels("app", "web"), preferPods(true, "app", "web")), "n1"},
		{"existing pod's preferred affinity", []*corev1.Node{makeNode("n1", "2", "4Gi", 110), makeNode("n2", "2", "4Gi", 110)},
			[]*corev1.Pod{makePod("cache", "1", "2Gi", onNode("n2"), preferPods(false, "app", "web"))},
			makePod("p", "", "", withPodLabels("app", "web")), "n2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Scheduler{rand: rand.New(rand.NewPCG(1, 2))}
			for i := 0; i < 10; i++ {
				got, fe := s.schedulePod(snapshotOf(tc.nodes, tc.existing...), tc.pod)
				if fe != nil || got != tc.want {
					t.Fatalf("schedule = %q (%v), want %q", got, fe, tc.want)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	s := []int64{0, 5, 10}
	normalize(s, false)
	if s[0] != 0 || s[1] != 50 || s[2] != 100 {
		t.Fatal(s)
	}
	s = []int64{0, 1, 2}
	normalize(s, true)
	if s[0] != 100 || s[1] != 50 || s[2] != 0 {
		t.Fatal(s)
	}
	s = []int64{0, 0}
	normalize(s, true)
	if s[0] != 100 || s[1] != 100 {
		t.Fatal(s)
	}
}

func TestScheduleReportsEveryNodesReason(t *testing.T) {
	nodes := []*corev1.Node{
		makeNode("n1", "1", "4Gi", 110),
		makeNode("n2", "4", "4Gi", 110, withLabels("disk", "hdd")),
		makeNode("n3", "4", "4Gi", 110, withLabels("disk", "hdd")),
	}
	s := &Scheduler{rand: rand.New(rand.NewPCG(1, 2))}
	pod := makePod("p", "2", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	pod.Spec.NodeSelector = nil
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "disk", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"hdd"}}}}}}}}
	_, fe := s.schedulePod(snapshotOf(nodes), pod)
	if fe == nil {
		t.Fatal("pod fits")
	}
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. " +
		"preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
	if fe.Error() != want {
		t.Fatalf("got %q", fe.Error())
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for n, want := range map[int]int{3: 3, 99: 99, 100: 100, 500: 230, 5000: 500} {
		if got := numFeasibleNodesToFind(n); got != want {
			t.Errorf("%d nodes: %d, want %d", n, got, want)
		}
	}
}
