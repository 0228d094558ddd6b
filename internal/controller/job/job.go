// Package job is the Job controller: it runs a Job's pods to completion,
// parallelism at a time, counting successes and failures, with the
// backoff limit, active deadline and ttlSecondsAfterFinished of
// Kubernetes' Job and TTL-after-finished controllers.
package job

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Controller is the Job controller.
type Controller struct {
	client   controller.Client
	recorder *controller.Recorder
	jobs     controller.Lister[*batchv1.Job]
	pods     controller.Lister[*corev1.Pod]
	queue    controller.Queue
	log      *logrus.Entry
	now      func() time.Time
}

// New returns the Job controller.
func New(env controller.Env) *Controller {
	return &Controller{
		client:   env.Client,
		recorder: env.Recorder("job-controller"),
		jobs:     controller.Lister[*batchv1.Job]{Res: env.Resources.Resource(schema.GroupResource{Group: "batch", Resource: "jobs"})},
		pods:     controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(schema.GroupResource{Resource: "pods"})},
		queue:    env.NewQueue("job"),
		log:      env.Log.WithField("controller", "job"),
		now:      time.Now,
	}
}

// Run syncs Jobs until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	go controller.Watch(ctx, c.jobs.Res, controller.EnqueueHandler(c.queue))
	go controller.Watch(ctx, c.pods.Res, controller.OwnerHandler(c.queue, "Job"))
	return controller.Run(ctx, c.queue, 2, c.log, c.sync)
}

// condition reports whether the job has condition t set to True.
func condition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func finished(j *batchv1.Job) *batchv1.JobCondition {
	if c := condition(j, batchv1.JobComplete); c != nil {
		return c
	}
	return condition(j, batchv1.JobFailed)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name := controller.SplitKey(key)
	cached, ok := c.jobs.Get(ns, name)
	if !ok || cached.DeletionTimestamp != nil {
		return nil
	}
	j := cached.DeepCopy()
	if f := finished(j); f != nil {
		return c.expire(ctx, j, f)
	}
	active, succeeded, failed := c.podsOf(j)
	now := metav1.NewTime(c.now())
	st := j.Status.DeepCopy()
	if st.StartTime == nil && !suspended(j) {
		st.StartTime = &now
	}
	st.Succeeded = max(st.Succeeded, int32(len(succeeded)))
	st.Failed = max(st.Failed, int32(len(failed)))
	st.Ready = ptr(countReady(active))

	backoffLimit := int32(6)
	if j.Spec.BackoffLimit != nil {
		backoffLimit = *j.Spec.BackoffLimit
	}
	var done *finish
	switch {
	case st.Failed > backoffLimit:
		done = &finish{failed: true, reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit"}
	case j.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil &&
		now.Sub(st.StartTime.Time) >= time.Duration(*j.Spec.ActiveDeadlineSeconds)*time.Second:
		done = &finish{failed: true, reason: "DeadlineExceeded", message: "Job was active longer than specified deadline"}
	case complete(j, st.Succeeded, len(active)):
		done = &finish{reason: "", message: ""}
	}
	if done != nil || suspended(j) {
		for _, p := range active {
			if err := c.client.Delete(ctx, p, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		active = nil
	}
	st.Active = int32(len(active))
	if done == nil && !suspended(j) {
		n, err := c.manage(ctx, j, active, st)
		if err != nil {
			return err
		}
		st.Active = int32(n)
	}
	if done != nil {
		c.finish(ctx, j, st, done, now)
	}
	if j.Spec.ActiveDeadlineSeconds != nil && st.StartTime != nil && done == nil {
		left := time.Duration(*j.Spec.ActiveDeadlineSeconds)*time.Second - now.Sub(st.StartTime.Time)
		c.queue.AddAfter(key, left)
	}
	if equality.Semantic.DeepEqual(*st, j.Status) {
		return nil
	}
	j.Status = *st
	_, err := c.client.UpdateStatus(ctx, j)
	return err
}

type finish struct {
	failed          bool
	reason, message string
}

// finish sets the terminal conditions Kubernetes sets: SuccessCriteriaMet
// then Complete, or FailureTarget then Failed.
func (c *Controller) finish(ctx context.Context, j *batchv1.Job, st *batchv1.JobStatus, f *finish, now metav1.Time) {
	add := func(t batchv1.JobConditionType, reason, msg string) {
		st.Conditions = append(st.Conditions, batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue,
			LastProbeTime: now, LastTransitionTime: now, Reason: reason, Message: msg})
	}
	if f.failed {
		add(batchv1.JobFailureTarget, f.reason, f.message)
		add(batchv1.JobFailed, f.reason, f.message)
		c.recorder.Eventf(ctx, j, corev1.EventTypeWarning, f.reason, "%s", f.message)
		return
	}
	add(batchv1.JobSuccessCriteriaMet, "CompletionsReached", "Reached expected number of succeeded pods")
	add(batchv1.JobComplete, "CompletionsReached", "Reached expected number of succeeded pods")
	st.CompletionTime = &now
	c.recorder.Eventf(ctx, j, corev1.EventTypeNormal, "Completed", "Job completed")
}

func suspended(j *batchv1.Job) bool { return j.Spec.Suspend != nil && *j.Spec.Suspend }

func ptr(n int32) *int32 { return &n }

// complete reports whether enough pods succeeded: completions of them, or
// (without completions) any one once none is active.
func complete(j *batchv1.Job, succeeded int32, active int) bool {
	if j.Spec.Completions != nil {
		return succeeded >= *j.Spec.Completions
	}
	return succeeded > 0 && active == 0
}

// wantActive is how many pods should run: parallelism, capped by the
// completions still needed.
func wantActive(j *batchv1.Job, succeeded int32) int32 {
	par := int32(1)
	if j.Spec.Parallelism != nil {
		par = *j.Spec.Parallelism
	}
	if j.Spec.Completions != nil {
		par = min(par, max(*j.Spec.Completions-succeeded, 0))
	} else if succeeded > 0 {
		return 0
	}
	return par
}

func countReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// podsOf sorts the Job's pods into active, succeeded and failed.
func (c *Controller) podsOf(j *batchv1.Job) (active, succeeded, failed []*corev1.Pod) {
	for _, p := range c.pods.List(j.Namespace, nil) {
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.UID != j.UID {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded = append(succeeded, p)
		case p.Status.Phase == corev1.PodFailed:
			failed = append(failed, p)
		case p.DeletionTimestamp == nil:
			active = append(active, p)
		}
	}
	return active, succeeded, failed
}

// manage creates pods up to the wanted number (after the failure back-off)
// or deletes the surplus, and returns how many are then active.
func (c *Controller) manage(ctx context.Context, j *batchv1.Job, active []*corev1.Pod, st *batchv1.JobStatus) (int, error) {
	want := int(wantActive(j, st.Succeeded))
	n := len(active)
	for i := want; i < len(active); i++ {
		if err := c.client.Delete(ctx, active[i], &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return n, err
		}
		n--
	}
	if n >= want {
		return n, nil
	}
	if st.Failed > 0 {
		// 10 s doubling per failure, capped at 6 minutes, as Kubernetes.
		delay := min(10*time.Second<<min(st.Failed-1, 10), 6*time.Minute)
		if last := c.lastFailure(j); !last.IsZero() && c.now().Sub(last) < delay {
			c.queue.AddAfter(controller.Key(j), delay-c.now().Sub(last))
			return n, nil
		}
	}
	for ; n < want; n++ {
		created, err := c.client.Create(ctx, c.newPod(j))
		if err != nil {
			c.recorder.Eventf(ctx, j, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			return n, err
		}
		c.recorder.Eventf(ctx, j, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.(*corev1.Pod).Name)
	}
	return n, nil
}

// lastFailure is when the Job's latest failed pod finished.
func (c *Controller) lastFailure(j *batchv1.Job) time.Time {
	var last time.Time
	_, _, failed := c.podsOf(j)
	for _, p := range failed {
		t := p.CreationTimestamp.Time
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil && cs.State.Terminated.FinishedAt.After(t) {
				t = cs.State.Terminated.FinishedAt.Time
			}
		}
		if t.After(last) {
			last = t
		}
	}
	return last
}

func (c *Controller) newPod(j *batchv1.Job) *corev1.Pod {
	yes := true
	t := j.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: j.Name + "-", Namespace: j.Namespace, Labels: t.Labels, Annotations: t.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: t.Spec,
	}
}

// expire deletes a finished Job ttlSecondsAfterFinished after it finished.
func (c *Controller) expire(ctx context.Context, j *batchv1.Job, f *batchv1.JobCondition) error {
	if j.Spec.TTLSecondsAfterFinished == nil {
		return nil
	}
	at := f.LastTransitionTime.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second)
	if left := at.Sub(c.now()); left > 0 {
		c.queue.AddAfter(controller.Key(j), left)
		return nil
	}
	fg := metav1.DeletePropagationForeground
	err := c.client.Delete(ctx, j, &metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete expired job: %w", err)
	}
	return nil
}
