package daemonset

import (
	"context"
	"testing"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var (
	dsGR    = schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	nodesGR = schema.GroupResource{Resource: "nodes"}
	podsGR  = schema.GroupResource{Resource: "pods"}
)

func node(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func newDS(nodeSelector map[string]string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "ds-uid", Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{NodeSelector: nodeSelector, Containers: []corev1.Container{{Name: "c", Image: "v1"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
		},
	}
}

func setup(t *testing.T, ds *appsv1.DaemonSet, nodes ...*corev1.Node) (*Controller, controller.MemoryResources) {
	res := controller.MemoryResources{}
	for _, gr := range []schema.GroupResource{dsGR, nodesGR, podsGR, {Resource: "events"}} {
		res.Resource(gr)
	}
	res.Resource(dsGR).Put(ds)
	for _, n := range nodes {
		res.Resource(nodesGR).Put(n)
	}
	return New(controller.Env{Resources: res, Client: controllertest.New(res), Log: logrus.NewEntry(logrus.New())}), res
}

func (c *Controller) mustSync(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	if err := c.sync(context.Background(), "kube-system/agent"); err != nil {
		t.Fatal(err)
	}
	ds, _ := c.daemonSets.Get("kube-system", "agent")
	return ds
}

// podsByNode returns the node each daemon pod is pinned to.
func (c *Controller) podsByNode() map[string]*corev1.Pod {
	out := map[string]*corev1.Pod{}
	for _, p := range c.pods.List("kube-system", nil) {
		out[podNode(p)] = p
	}
	return out
}

func TestOnePodPerEligibleNode(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	c, _ := setup(t, newDS(map[string]string{"role": "worker"}),
		node("a", map[string]string{"role": "worker"}),
		node("b", map[string]string{"role": "worker"}),
		node("c", map[string]string{"role": "db"}),
		node("d", map[string]string{"role": "worker"}, taint),
		node("e", map[string]string{"role": "worker"}, corev1.Taint{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}))
	ds := c.mustSync(t)
	got := c.podsByNode()
	if len(got) != 3 || got["a"] == nil || got["b"] == nil || got["e"] == nil {
		t.Fatalf("pods on %v, want a, b and e", keys(got))
	}
	if ds.Status.DesiredNumberScheduled != 3 {
		t.Fatalf("desired %d", ds.Status.DesiredNumberScheduled)
	}
	// Idempotent.
	c.mustSync(t)
	if n := len(c.pods.List("kube-system", nil)); n != 3 {
		t.Fatalf("second sync: %d pods", n)
	}
}

func keys(m map[string]*corev1.Pod) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNodeAddedLaterGetsAPodAndRemovedNodeLosesIt(t *testing.T) {
	c, res := setup(t, newDS(nil), node("a", nil))
	c.mustSync(t)
	res.Resource(nodesGR).Put(node("b", nil))
	c.mustSync(t)
	if got := c.podsByNode(); len(got) != 2 || got["b"] == nil {
		t.Fatalf("pods on %v", keys(got))
	}
	n, _ := c.nodes.Get("", "a")
	nn := n.DeepCopy()
	nn.Labels = map[string]string{"x": "y"}
	ds, _ := c.daemonSets.Get("kube-system", "agent")
	d := ds.DeepCopy()
	d.Spec.Template.Spec.NodeSelector = map[string]string{"x": "z"}
	res.Resource(dsGR).Put(d)
	res.Resource(nodesGR).Put(nn)
	c.mustSync(t)
	if got := c.podsByNode(); len(got) != 0 {
		t.Fatalf("pods left on ineligible nodes: %v", keys(got))
	}
}

func TestRollingUpdateReplacesOneAtATime(t *testing.T) {
	c, res := setup(t, newDS(nil), node("a", nil), node("b", nil), node("c", nil))
	c.mustSync(t)
	markReady := func() {
		for _, p := range c.pods.List("kube-system", nil) {
			pp := p.DeepCopy()
			pp.Spec.NodeName = podNode(p)
			pp.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			res.Resource(podsGR).Put(pp)
		}
	}
	markReady()
	ds, _ := c.daemonSets.Get("kube-system", "agent")
	d := ds.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = "v2"
	res.Resource(dsGR).Put(d)
	hash := templateHash(d)
	for step := 0; step < 10; step++ {
		c.mustSync(t)
		old := 0
		for _, p := range c.pods.List("kube-system", nil) {
			if p.Labels[hashLabel] != hash {
				old++
			}
		}
		if n := len(c.pods.List("kube-system", nil)); n < 2 {
			t.Fatalf("step %d: %d pods: more than maxUnavailable=1 down", step, n)
		}
		markReady()
		if old == 0 && len(c.pods.List("kube-system", nil)) == 3 {
			got := c.mustSync(t)
			if got.Status.UpdatedNumberScheduled != 3 || got.Status.NumberReady != 3 {
				t.Fatalf("status %+v", got.Status)
			}
			return
		}
	}
	t.Fatal("rolling update never finished")
}

func TestRollingUpdateWithoutReadyPodsStaysWithinMaxUnavailable(t *testing.T) {
	c, res := setup(t, newDS(nil), node("a", nil), node("b", nil), node("c", nil))
	c.mustSync(t)
	for _, p := range c.pods.List("kube-system", nil) {
		pp := p.DeepCopy()
		pp.Spec.NodeName = podNode(p)
		pp.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		res.Resource(podsGR).Put(pp)
	}
	ds, _ := c.daemonSets.Get("kube-system", "agent")
	d := ds.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = "v2"
	res.Resource(dsGR).Put(d)
	for i := 0; i < 3; i++ {
		c.mustSync(t) // no replacement ever becomes ready
	}
	readyOld := 0
	for _, p := range c.pods.List("kube-system", nil) {
		if ready(p) {
			readyOld++
		}
	}
	if readyOld < 2 {
		t.Fatalf("%d ready pods left of 3 with maxUnavailable 1", readyOld)
	}
}
