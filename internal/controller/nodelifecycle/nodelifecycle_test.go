package nodelifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/admission"
	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var (
	nodesGR  = schema.GroupResource{Resource: "nodes"}
	podsGR   = schema.GroupResource{Resource: "pods"}
	leasesGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
)

func setup(t *testing.T, start time.Time) (*Controller, controller.MemoryResources, *time.Time) {
	res := controller.MemoryResources{}
	clock := start
	c := New(controller.Env{Resources: res, Client: controllertest.New(res), Log: logrus.NewEntry(logrus.New()),
		Config: controller.Config{NodeMonitorGracePeriod: 40 * time.Second}})
	c.now = func() time.Time { return clock }
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: metav1.NewTime(start)},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(start)}}}}
	res.Resource(nodesGR).Put(node)
	renew := metav1.NewMicroTime(start)
	res.Resource(leasesGR).Put(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease}, Spec: coordinationv1.LeaseSpec{RenewTime: &renew}})
	return c, res, &clock
}

func pod(name string, tolerate *int64) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	if tolerate != nil {
		p.Spec.Tolerations = []corev1.Toleration{{Key: admission.TaintUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: tolerate}}
	}
	return p
}

func (c *Controller) syncAll(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes.List("", nil) {
		if err := c.syncNode(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSilentNodeBecomesUnknownTaintedAndEvicts(t *testing.T) {
	start := time.Now()
	c, res, clock := setup(t, start)
	sixty := int64(60)
	res.Resource(podsGR).Put(pod("plain", nil))
	res.Resource(podsGR).Put(pod("patient", &sixty))
	c.syncAll(t)
	if n, _ := c.nodes.Get("", "n1"); len(n.Spec.Taints) != 0 || ready(n).Status != corev1.ConditionTrue {
		t.Fatalf("fresh node changed: %+v", n.Spec.Taints)
	}
	*clock = start.Add(41 * time.Second)
	c.syncAll(t)
	n, _ := c.nodes.Get("", "n1")
	if ready(n).Status != corev1.ConditionUnknown || len(n.Spec.Taints) != 2 || n.Spec.Taints[1].Key != admission.TaintUnreachable {
		t.Fatalf("silent node: ready %v taints %+v", ready(n).Status, n.Spec.Taints)
	}
	if _, ok := c.pods.Get("default", "plain"); ok {
		t.Fatal("pod without toleration not evicted")
	}
	if _, ok := c.pods.Get("default", "patient"); !ok {
		t.Fatal("pod tolerating for 60 s evicted at once")
	}
	*clock = start.Add(41*time.Second + 61*time.Second)
	c.syncAll(t)
	if _, ok := c.pods.Get("default", "patient"); ok {
		t.Fatal("pod not evicted after its tolerationSeconds")
	}
}

func TestRecoveredNodeLosesTaints(t *testing.T) {
	start := time.Now()
	c, res, clock := setup(t, start)
	*clock = start.Add(time.Minute)
	c.syncAll(t)
	n, _ := c.nodes.Get("", "n1")
	nn := n.DeepCopy()
	nn.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(*clock)}
	res.Resource(nodesGR).Put(nn)
	c.syncAll(t)
	if n, _ := c.nodes.Get("", "n1"); len(n.Spec.Taints) != 0 {
		t.Fatalf("recovered node keeps taints %+v", n.Spec.Taints)
	}
}

func TestNotReadyNodeGetsNotReadyTaints(t *testing.T) {
	start := time.Now()
	c, res, _ := setup(t, start)
	n, _ := c.nodes.Get("", "n1")
	nn := n.DeepCopy()
	nn.Status.Conditions[0].Status = corev1.ConditionFalse
	res.Resource(nodesGR).Put(nn)
	c.syncAll(t)
	n, _ = c.nodes.Get("", "n1")
	if len(n.Spec.Taints) != 2 || n.Spec.Taints[0].Key != admission.TaintNotReady {
		t.Fatalf("taints %+v", n.Spec.Taints)
	}
}

func TestRestartedControllerGivesNodesAFullGracePeriod(t *testing.T) {
	start := time.Now()
	// The stored heartbeats are ten minutes old: the server was down.
	c, _, clock := setup(t, start.Add(-10*time.Minute))
	*clock = start
	c.syncAll(t)
	if n, _ := c.nodes.Get("", "n1"); ready(n).Status != corev1.ConditionTrue || len(n.Spec.Taints) != 0 {
		t.Fatalf("node judged by stale heartbeats after a restart: %+v", n.Spec.Taints)
	}
	*clock = start.Add(41 * time.Second)
	c.syncAll(t)
	if n, _ := c.nodes.Get("", "n1"); ready(n).Status != corev1.ConditionUnknown {
		t.Fatal("node silent for the grace period since the restart not marked Unknown")
	}
}

func TestPodsOfAnUnknownNodeBecomeNotReady(t *testing.T) {
	start := time.Now()
	c, res, clock := setup(t, start)
	forever := pod("p", nil)
	forever.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	forever.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	res.Resource(podsGR).Put(forever)
	c.syncAll(t)
	*clock = start.Add(time.Minute)
	c.syncAll(t)
	p, _ := c.pods.Get("default", "p")
	if p.Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Fatalf("pod on an Unknown node still Ready: %+v", p.Status.Conditions)
	}
}
