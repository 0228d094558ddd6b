package job

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var (
	jobsGR = schema.GroupResource{Group: "batch", Resource: "jobs"}
	podsGR = schema.GroupResource{Resource: "pods"}
)

func i32(n int32) *int32 { return &n }

func newJob(completions, parallelism *int32) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "job-uid"},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism, BackoffLimit: i32(2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"job-name": "pi"}},
				Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

type harness struct {
	t   *testing.T
	res controller.MemoryResources
	c   *Controller
}

func newHarness(t *testing.T, j *batchv1.Job) *harness {
	res := controller.MemoryResources{}
	res.Resource(jobsGR).Put(j)
	c := New(controller.Env{Resources: res, Client: controllertest.New(res), Log: logrus.NewEntry(logrus.New())})
	return &harness{t: t, res: res, c: c}
}

func (h *harness) sync() *batchv1.Job {
	h.t.Helper()
	if err := h.c.sync(context.Background(), "default/pi"); err != nil {
		h.t.Fatal(err)
	}
	j, _ := h.c.jobs.Get("default", "pi")
	return j
}

// finishPods moves up to n active pods to phase.
func (h *harness) finishPods(n int, phase corev1.PodPhase) {
	for _, p := range h.c.pods.List("default", nil) {
		if n == 0 {
			return
		}
		if p.Status.Phase == "" || p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning {
			pp := p.DeepCopy()
			pp.Status.Phase = phase
			h.res.Resource(podsGR).Put(pp)
			n--
		}
	}
}

func TestJobRunsParallelismUntilCompletions(t *testing.T) {
	h := newHarness(t, newJob(i32(3), i32(2)))
	j := h.sync()
	if j.Status.Active != 2 || len(h.c.pods.List("default", nil)) != 2 || j.Status.StartTime == nil {
		t.Fatalf("first sync: active %d, %d pods", j.Status.Active, len(h.c.pods.List("default", nil)))
	}
	p := h.c.pods.List("default", nil)[0]
	if ref := metav1.GetControllerOf(p); ref == nil || ref.Kind != "Job" || ref.UID != "job-uid" {
		t.Fatalf("pod owner %+v", p.OwnerReferences)
	}
	h.finishPods(2, corev1.PodSucceeded)
	j = h.sync()
	if j.Status.Succeeded != 2 || j.Status.Active != 1 {
		t.Fatalf("after 2 successes: succeeded %d active %d", j.Status.Succeeded, j.Status.Active)
	}
	h.finishPods(1, corev1.PodSucceeded)
	j = h.sync()
	if j.Status.Succeeded != 3 || j.Status.Active != 0 || finished(j) == nil || condition(j, batchv1.JobComplete) == nil || j.Status.CompletionTime == nil {
		t.Fatalf("not complete: %+v", j.Status)
	}
	if n := len(h.c.pods.List("default", nil)); n != 3 {
		t.Fatalf("%d pods after completion, want 3", n)
	}
}

func TestJobFailsAfterBackoffLimit(t *testing.T) {
	h := newHarness(t, newJob(i32(1), i32(1)))
	h.c.now = func() time.Time { return time.Now().Add(time.Hour) } // no back-off wait
	for i := 0; i < 3; i++ {
		h.sync()
		h.finishPods(1, corev1.PodFailed)
	}
	j := h.sync()
	if c := condition(j, batchv1.JobFailed); c == nil || c.Reason != "BackoffLimitExceeded" || j.Status.Failed != 3 {
		t.Fatalf("status %+v", j.Status)
	}
}

func TestJobActiveDeadline(t *testing.T) {
	j := newJob(i32(1), i32(1))
	j.Spec.ActiveDeadlineSeconds = func() *int64 { n := int64(10); return &n }()
	h := newHarness(t, j)
	h.sync()
	h.c.now = func() time.Time { return time.Now().Add(time.Minute) }
	got := h.sync()
	if c := condition(got, batchv1.JobFailed); c == nil || c.Reason != "DeadlineExceeded" || got.Status.Active != 0 {
		t.Fatalf("status %+v", got.Status)
	}
	if n := len(h.c.pods.List("default", nil)); n != 0 {
		t.Fatalf("%d active pods left after the deadline", n)
	}
}

func TestFinishedJobDeletedAfterTTL(t *testing.T) {
	j := newJob(i32(1), i32(1))
	j.Spec.TTLSecondsAfterFinished = i32(0)
	h := newHarness(t, j)
	h.sync()
	h.finishPods(1, corev1.PodSucceeded)
	h.sync()
	h.sync()
	if _, ok := h.c.jobs.Get("default", "pi"); ok {
		t.Fatal("finished job with ttlSecondsAfterFinished 0 still exists")
	}
}
