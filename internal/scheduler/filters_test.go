package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFilters(t *testing.T) {
	notReady := func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
	cordoned := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	req := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
		return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	tests := []struct {
		name     string
		node     *corev1.Node
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     string // "" when the pod fits
	}{
		{"fits", makeNode("n1", "2", "4Gi", 110), nil, makePod("p", "1", "1Gi"), ""},
		{"insufficient cpu", makeNode("n1", "2", "4Gi", 110), []*corev1.Pod{makePod("a", "1500m", "", onNode("n1"))},
			makePod("p", "600m", ""), "Insufficient cpu"},
		{"insufficient cpu and memory", makeNode("n1", "1", "1Gi", 110), nil, makePod("p", "2", "2Gi"),
			"Insufficient cpu,Insufficient memory"},
		{"too many pods", makeNode("n1", "2", "4Gi", 1), []*corev1.Pod{makePod("a", "", "", onNode("n1"))},
			makePod("p", "", ""), "Too many pods"},
		{"init container larger than containers", makeNode("n1", "2", "4Gi", 110), nil,
			makePod("p", "1", "", func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}}
			}), "Insufficient cpu"},
		{"cordoned", makeNode("n1", "2", "4Gi", 110, cordoned), nil, makePod("p", "", ""), reasonUnschedulable},
		{"cordoned tolerated", makeNode("n1", "2", "4Gi", 110, cordoned), nil,
			makePod("p", "", "", withToleration(corev1.TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule)), ""},
		{"not ready", makeNode("n1", "2", "4Gi", 110, notReady), nil, makePod("p", "", ""),
			"node(s) had untolerated taint {node.kubernetes.io/not-ready: }"},
		{"taint", makeNode("n1", "2", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule)), nil,
			makePod("p", "", ""), "node(s) had untolerated taint {dedicated: gpu}"},
		{"taint tolerated", makeNode("n1", "2", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoExecute)), nil,
			makePod("p", "", "", withToleration("dedicated", "gpu", "")), ""},
		{"taint wrong value", makeNode("n1", "2", "4Gi", 110, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule)), nil,
			makePod("p", "", "", withToleration("dedicated", "cpu", corev1.TaintEffectNoSchedule)), "node(s) had untolerated taint {dedicated: gpu}"},
		{"prefer-no-schedule taint filters nothing", makeNode("n1", "2", "4Gi", 110, withTaint("a", "b", corev1.TaintEffectPreferNoSchedule)), nil,
			makePod("p", "", ""), ""},
		{"node selector", makeNode("n1", "2", "4Gi", 110, withLabels("disk", "ssd")), nil,
			makePod("p", "", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), ""},
		{"node selector mismatch", makeNode("n1", "2", "4Gi", 110, withLabels("disk", "hdd")), nil,
			makePod("p", "", "", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }), reasonNodeAffinity},
		{"affinity In", makeNode("n1", "2", "4Gi", 110, withLabels("zone", "a")), nil,
			makePod("p", "", "", withNodeAffinity(req("zone", corev1.NodeSelectorOpIn, "a", "b"))), ""},
		{"affinity NotIn", makeNode("n1", "2", "4Gi", 110, withLabels("zone", "a")), nil,
			makePod("p", "", "", withNodeAffinity(req("zone", corev1.NodeSelectorOpNotIn, "a"))), reasonNodeAffinity},
		{"affinity Exists", makeNode("n1", "2", "4Gi", 110), nil,
			makePod("p", "", "", withNodeAffinity(req("zone", corev1.NodeSelectorOpExists))), reasonNodeAffinity},
		{"affinity DoesNotExist", makeNode("n1", "2", "4Gi", 110), nil,
			makePod("p", "", "", withNodeAffinity(req("zone", corev1.NodeSelectorOpDoesNotExist))), ""},
		{"affinity Gt", makeNode("n1", "2", "4Gi", 110, withLabels("gen", "5")), nil,
			makePod("p", "", "", withNodeAffinity(req("gen", corev1.NodeSelectorOpGt, "4"))), ""},
		{"affinity Lt", makeNode("n1", "2", "4Gi", 110, withLabels("gen", "5")), nil,
			makePod("p", "", "", withNodeAffinity(req("gen", corev1.NodeSelectorOpLt, "5"))), reasonNodeAffinity},
		{"affinity matchFields", makeNode("n1", "2", "4Gi", 110), nil,
			makePod("p", "", "", func(p *corev1.Pod) {
				withNodeAffinity()(p)
				p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields =
					[]corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n2")}
			}), reasonNodeAffinity},
		{"host port conflict", makeNode("n1", "2", "4Gi", 110), []*corev1.Pod{makePod("a", "", "", onNode("n1"), withHostPort(80))},
			makePod("p", "", "", withHostPort(80)), reasonNodePorts},
		{"host port free", makeNode("n1", "2", "4Gi", 110), []*corev1.Pod{makePod("a", "", "", onNode("n1"), withHostPort(80))},
			makePod("p", "", "", withHostPort(81)), ""},
		{"anti-affinity", makeNode("n1", "2", "4Gi", 110), []*corev1.Pod{makePod("a", "", "", onNode("n1"), withPodLabels("app", "web"))},
			makePod("p", "", "", withPodLabels("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")), reasonPodAntiAffinity},
		{"anti-affinity other app", makeNode("n1", "2", "4Gi", 110), []*corev1.Pod{makePod("a", "", "", onNode("n1"), withPodLabels("app", "db"))},
			makePod("p", "", "", withPodLabels("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")), ""},
		{"existing pod's anti-affinity", makeNode("n1", "2", "4Gi", 110),
			[]*corev1.Pod{makePod("a", "", "", onNode("n1"), withAntiAffinity(corev1.LabelHostname, "app", "web"))},
			makePod("p", "", "", withPodLabels("app", "web")), reasonExistingAntiAffine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshotOf([]*corev1.Node{tc.node}, tc.existing...)
			r := filter(newPodState(tc.pod, snap), snap.byName[tc.node.Name])
			if got := strings.Join(r.reasons, ","); got != tc.want {
				t.Fatalf("filter = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPodRequestsCountsInitContainersAsKubernetes(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	cpu := func(v string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(v)}}
	}
	tests := []struct {
		name string
		init []corev1.Container
		want int64
	}{
		{"containers only", nil, 500},
		{"smaller init", []corev1.Container{{Resources: cpu("200m")}}, 500},
		{"larger init", []corev1.Container{{Resources: cpu("2")}}, 2000},
		{"sidecar adds", []corev1.Container{{Resources: cpu("100m"), RestartPolicy: &always}}, 600},
		{"init after sidecar", []corev1.Container{{Resources: cpu("100m"), RestartPolicy: &always}, {Resources: cpu("1")}}, 1100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := makePod("p", "500m", "")
			p.Spec.InitContainers = tc.init
			if got := podRequests(p, false).milliCPU; got != tc.want {
				t.Fatalf("cpu = %dm, want %dm", got, tc.want)
			}
		})
	}
}

func TestFitErrorMessageIsKubernetesSummary(t *testing.T) {
	e := &fitError{numNodes: 3, reasons: map[string]int{"Insufficient cpu": 1, reasonNodeAffinity: 2}, unresolvable: 2}
	want := "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector. " +
		"preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
	if got := e.Error(); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestAntiAffinityNamespaces(t *testing.T) {
	existing := makePod("a", "", "", onNode("n1"), withPodLabels("app", "web"), func(p *corev1.Pod) { p.Namespace = "other" })
	tests := []struct {
		name string
		term func(*corev1.PodAffinityTerm)
		want string
	}{
		{"own namespace only", func(*corev1.PodAffinityTerm) {}, ""},
		{"listed namespace", func(t *corev1.PodAffinityTerm) { t.Namespaces = []string{"other"} }, reasonPodAntiAffinity},
		{"namespace selector", func(t *corev1.PodAffinityTerm) {
			t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
		}, reasonPodAntiAffinity},
		{"namespace selector mismatch", func(t *corev1.PodAffinityTerm) {
			t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}
		}, ""},
		{"empty namespace selector", func(t *corev1.PodAffinityTerm) { t.NamespaceSelector = &metav1.LabelSelector{} }, reasonPodAntiAffinity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := makeNode("n1", "2", "4Gi", 110)
			snap := snapshotOf([]*corev1.Node{node}, existing)
			snap.namespaceLabels = map[string]map[string]string{"other": {"team": "a"}, "default": {}}
			pod := makePod("p", "", "", withAntiAffinity(corev1.LabelHostname, "app", "web"))
			tc.term(&pod.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0])
			r := filter(newPodState(pod, snap), snap.byName["n1"])
			if got := strings.Join(r.reasons, ","); got != tc.want {
				t.Fatalf("filter = %q, want %q", got, tc.want)
			}
		})
	}
}
