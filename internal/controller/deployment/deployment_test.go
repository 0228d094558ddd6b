package deployment

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var (
	deploymentsGR = schema.GroupResource{Group: "apps", Resource: "deployments"}
	replicaSetsGR = schema.GroupResource{Group: "apps", Resource: "replicasets"}
)

func newDeployment(n int32, image string, strategy appsv1.DeploymentStrategyType) *appsv1.Deployment {
	one := intstr.FromInt32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "d-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
			Strategy: appsv1.DeploymentStrategy{Type: strategy},
		},
	}
	if strategy == appsv1.RollingUpdateDeploymentStrategyType {
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &one, MaxUnavailable: &one}
	}
	return d
}

type harness struct {
	t    *testing.T
	res  controller.MemoryResources
	fake *controllertest.Fake
	c    *Controller
}

func newHarness(t *testing.T, d *appsv1.Deployment) *harness {
	res := controller.MemoryResources{}
	fake := controllertest.New(res)
	res.Resource(deploymentsGR).Put(d)
	c := New(controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(logrus.New())})
	return &harness{t: t, res: res, fake: fake, c: c}
}

func (h *harness) sync() {
	h.t.Helper()
	if err := h.c.sync(context.Background(), "default/web"); err != nil {
		h.t.Fatal(err)
	}
}

// replicaSets returns the ReplicaSets by image.
func (h *harness) replicaSets() map[string]*appsv1.ReplicaSet {
	out := map[string]*appsv1.ReplicaSet{}
	for _, rs := range h.c.replicaSets.List("default", nil) {
		out[rs.Spec.Template.Spec.Containers[0].Image] = rs
	}
	return out
}

// settle marks every ReplicaSet's pods as existing and available, as the
// ReplicaSet controller and kubelets would.
func (h *harness) settle() {
	for _, rs := range h.c.replicaSets.List("default", nil) {
		r := rs.DeepCopy()
		n := replicas(r.Spec.Replicas)
		r.Status = appsv1.ReplicaSetStatus{Replicas: n, ReadyReplicas: n, AvailableReplicas: n}
		h.res.Resource(replicaSetsGR).Put(r)
	}
}

func (h *harness) setImage(image string) {
	d, _ := h.c.deployments.Get("default", "web")
	dd := d.DeepCopy()
	dd.Spec.Template.Spec.Containers[0].Image = image
	dd.Generation++
	h.res.Resource(deploymentsGR).Put(dd)
}

func TestFirstSyncCreatesReplicaSetWithAllReplicas(t *testing.T) {
	h := newHarness(t, newDeployment(4, "v1", appsv1.RollingUpdateDeploymentStrategyType))
	h.sync()
	rs := h.replicaSets()["v1"]
	if rs == nil || *rs.Spec.Replicas != 4 || rs.Annotations[RevisionAnnotation] != "1" {
		t.Fatalf("new replica set: %+v", rs)
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != "d-uid" || ref.Kind != "Deployment" {
		t.Fatalf("owner: %+v", rs.OwnerReferences)
	}
	if rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] == "" || rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" {
		t.Fatal("pod-template-hash missing from selector or template")
	}
	// Idempotent: a second sync creates nothing.
	h.fake.Reset()
	h.settle()
	h.sync()
	for _, a := range h.fake.Actions() {
		if a.Verb == "create" && a.Resource == "replicasets" {
			t.Fatalf("second sync created a replica set")
		}
	}
	d, _ := h.c.deployments.Get("default", "web")
	if d.Status.AvailableReplicas != 4 || d.Status.UpdatedReplicas != 4 || d.Annotations[RevisionAnnotation] != "1" {
		t.Fatalf("status %+v annotations %v", d.Status, d.Annotations)
	}
}

func TestRollingUpdateRespectsMaxSurgeAndMaxUnavailable(t *testing.T) {
	h := newHarness(t, newDeployment(4, "v1", appsv1.RollingUpdateDeploymentStrategyType))
	h.sync()
	h.settle()
	h.sync()
	h.setImage("v2")
	for step := 0; step < 20; step++ {
		h.sync()
		rss := h.replicaSets()
		total := int32(0)
		for _, rs := range rss {
			total += replicas(rs.Spec.Replicas)
		}
		if total > 4+1 {
			t.Fatalf("step %d: %d replicas exceed replicas+maxSurge", step, total)
		}
		avail := int32(0)
		for _, rs := range rss {
			avail += min(rs.Status.AvailableReplicas, replicas(rs.Spec.Replicas))
		}
		if avail < 4-1 {
			t.Fatalf("step %d: %d available, below replicas-maxUnavailable", step, avail)
		}
		if rss["v2"] != nil && replicas(rss["v2"].Spec.Replicas) == 4 && replicas(rss["v1"].Spec.Replicas) == 0 {
			if rss["v2"].Annotations[RevisionAnnotation] != "2" {
				t.Fatalf("new revision %q", rss["v2"].Annotations[RevisionAnnotation])
			}
			return
		}
		h.settle()
	}
	t.Fatalf("rollout never finished: %+v", h.replicaSets())
}

func TestRecreateScalesOldToZeroFirst(t *testing.T) {
	h := newHarness(t, newDeployment(3, "v1", appsv1.RecreateDeploymentStrategyType))
	h.sync()
	h.sync() // first sync created the RS at 0; recreate scales it to 3
	h.settle()
	h.setImage("v2")
	h.sync()
	rss := h.replicaSets()
	if replicas(rss["v1"].Spec.Replicas) != 0 || replicas(rss["v2"].Spec.Replicas) != 0 {
		t.Fatalf("recreate did not wait: v1 %d v2 %d", replicas(rss["v1"].Spec.Replicas), replicas(rss["v2"].Spec.Replicas))
	}
	h.settle() // old pods gone
	h.sync()
	if got := replicas(h.replicaSets()["v2"].Spec.Replicas); got != 3 {
		t.Fatalf("new replica set at %d after old pods went, want 3", got)
	}
}

func TestRollbackReusesOldReplicaSetWithNextRevision(t *testing.T) {
	h := newHarness(t, newDeployment(2, "v1", appsv1.RollingUpdateDeploymentStrategyType))
	for _, img := range []string{"v1", "v2", "v1"} {
		h.setImage(img)
		for i := 0; i < 10; i++ {
			h.sync()
			h.settle()
		}
	}
	rss := h.replicaSets()
	if len(rss) != 2 {
		t.Fatalf("%d replica sets, want 2 (v1 reused)", len(rss))
	}
	if rss["v1"].Annotations[RevisionAnnotation] != "3" || rss["v1"].Annotations[RevisionHistoryAnnotation] != "1" {
		t.Fatalf("rolled-back replica set annotations %v", rss["v1"].Annotations)
	}
}

func TestRevisionHistoryLimitDeletesOldReplicaSets(t *testing.T) {
	d := newDeployment(1, "v0", appsv1.RollingUpdateDeploymentStrategyType)
	limit := int32(1)
	d.Spec.RevisionHistoryLimit = &limit
	h := newHarness(t, d)
	for _, img := range []string{"v1", "v2", "v3"} {
		h.setImage(img)
		for i := 0; i < 10; i++ {
			h.sync()
			h.settle()
		}
	}
	if n := len(h.replicaSets()); n != 2 {
		t.Fatalf("%d replica sets kept, want 1 old + the current", n)
	}
}

func TestPausedDeploymentDoesNotRollOut(t *testing.T) {
	h := newHarness(t, newDeployment(2, "v1", appsv1.RollingUpdateDeploymentStrategyType))
	h.sync()
	h.settle()
	d, _ := h.c.deployments.Get("default", "web")
	dd := d.DeepCopy()
	dd.Spec.Paused = true
	dd.Spec.Template.Spec.Containers[0].Image = "v2"
	h.res.Resource(deploymentsGR).Put(dd)
	h.sync()
	if _, ok := h.replicaSets()["v2"]; ok {
		t.Fatal("paused deployment rolled out")
	}
}

func TestStalledRolloutExceedsProgressDeadline(t *testing.T) {
	d := newDeployment(2, "v1", appsv1.RollingUpdateDeploymentStrategyType)
	deadline := int32(600)
	d.Spec.ProgressDeadlineSeconds = &deadline
	h := newHarness(t, d)
	h.sync()
	h.sync()
	got, _ := h.c.deployments.Get("default", "web")
	var prog *appsv1.DeploymentCondition
	for i := range got.Status.Conditions {
		if got.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			prog = &got.Status.Conditions[i]
		}
	}
	if prog == nil || prog.Reason != "ReplicaSetUpdated" {
		t.Fatalf("progressing %+v", prog)
	}
	// No pod ever becomes available; ten minutes later the rollout has
	// timed out.
	stale := got.DeepCopy()
	for i := range stale.Status.Conditions {
		if stale.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			stale.Status.Conditions[i].LastUpdateTime = metav1.NewTime(time.Now().Add(-11 * time.Minute))
		}
	}
	h.res.Resource(deploymentsGR).Put(stale)
	h.sync()
	got, _ = h.c.deployments.Get("default", "web")
	for _, c := range got.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			if c.Status != corev1.ConditionFalse || c.Reason != "ProgressDeadlineExceeded" {
				t.Fatalf("after the deadline: %+v", c)
			}
			// Its own status write triggers another sync: the condition stays.
			h.sync()
			again, _ := h.c.deployments.Get("default", "web")
			for _, c2 := range again.Status.Conditions {
				if c2.Type == appsv1.DeploymentProgressing && c2.Reason != "ProgressDeadlineExceeded" {
					t.Fatalf("condition flipped back: %+v", c2)
				}
			}
			return
		}
	}
	t.Fatal("no Progressing condition")
}

// TestRollingUpdateWithStaleStatusKeepsAvailability syncs repeatedly
// without the ReplicaSet controller updating any status: the old pods must
// not all be taken down while no new pod is available.
func TestRollingUpdateWithStaleStatusKeepsAvailability(t *testing.T) {
	h := newHarness(t, newDeployment(4, "v1", appsv1.RollingUpdateDeploymentStrategyType))
	h.sync()
	h.settle()
	h.sync()
	h.setImage("v2")
	for i := 0; i < 6; i++ {
		h.sync()
	}
	rss := h.replicaSets()
	if got := replicas(rss["v1"].Spec.Replicas); got < 3 {
		t.Fatalf("old replica set scaled to %d with no new pod available; maxUnavailable is 1", got)
	}
}
