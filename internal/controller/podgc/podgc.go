// Package podgc deletes pods nothing else will clean up, as
// kube-controller-manager's PodGC does: pods bound to nodes that no longer
// exist, terminated pods beyond the configured threshold, and unscheduled
// pods that are being deleted.
package podgc

import (
	"context"
	"sort"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Kubernetes' defaults.
const (
	// DefaultPeriod is how often pods are collected (gcCheckPeriod).
	DefaultPeriod = 20 * time.Second
	// DefaultQuarantine is how long a node must stay missing before the
	// pods bound to it are deleted (quarantineTime).
	DefaultQuarantine = 40 * time.Second
)

// reasonDeletionByPodGC is the DisruptionTarget reason Kubernetes gives
// pods PodGC deletes.
const reasonDeletionByPodGC = "DeletionByPodGC"

// Controller collects pods periodically rather than per event: what it
// looks for (a node missing for a while, a count above a threshold) is a
// property of the whole cluster, not of one pod.
type Controller struct {
	env        controller.Env
	pods       controller.Lister[*corev1.Pod]
	nodes      controller.Lister[*corev1.Node]
	log        *logrus.Entry
	period     time.Duration
	quarantine time.Duration
	now        func() time.Time

	// missing is when each node pods are bound to was first seen missing.
	// Only the gc loop (one goroutine) uses it; losing it on restart only
	// restarts the quarantine.
	missing map[string]time.Time
}

// Option changes a Controller's defaults.
type Option func(*Controller)

// WithPeriod sets how often pods are collected.
func WithPeriod(d time.Duration) Option { return func(c *Controller) { c.period = d } }

// WithQuarantine sets how long a node must be missing before its pods go.
func WithQuarantine(d time.Duration) Option { return func(c *Controller) { c.quarantine = d } }

// WithClock sets the clock (for tests).
func WithClock(now func() time.Time) Option { return func(c *Controller) { c.now = now } }

// New returns a pod GC controller over env.
func New(env controller.Env, opts ...Option) *Controller {
	c := &Controller{
		env:        env,
		pods:       controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(corev1.Resource("pods"))},
		nodes:      controller.Lister[*corev1.Node]{Res: env.Resources.Resource(corev1.Resource("nodes"))},
		log:        env.Log.WithField("controller", "podgc"),
		period:     DefaultPeriod,
		quarantine: DefaultQuarantine,
		now:        time.Now,
		missing:    map[string]time.Time{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Run collects pods at once and then every period until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.period)
	defer t.Stop()
	for {
		c.gc(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// gc is one collection pass over the cache.
func (c *Controller) gc(ctx context.Context) {
	pods := c.pods.List("", nil)
	done := map[string]bool{}
	if n := c.env.Config.TerminatedPodGCThreshold; n > 0 {
		c.gcTerminated(ctx, pods, n, done)
	}
	c.gcOrphaned(ctx, pods, done)
	c.gcUnscheduledTerminating(ctx, pods, done)
}

// gcTerminated deletes the oldest terminated pods (evicted ones first)
// beyond threshold.
func (c *Controller) gcTerminated(ctx context.Context, pods []*corev1.Pod, threshold int, done map[string]bool) {
	var terminated []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			terminated = append(terminated, p)
		}
	}
	excess := len(terminated) - threshold
	if excess <= 0 {
		return
	}
	sort.Slice(terminated, func(i, j int) bool {
		a, b := terminated[i], terminated[j]
		if ea, eb := evicted(a), evicted(b); ea != eb {
			return ea
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	c.log.WithField("count", excess).WithField("threshold", threshold).Info("garbage collecting terminated pods")
	for _, p := range terminated[:excess] {
		c.failAndDelete(ctx, p, nil, done)
	}
}

func evicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

// gcOrphaned deletes the pods bound to nodes that have been missing for
// the quarantine period.
func (c *Controller) gcOrphaned(ctx context.Context, pods []*corev1.Pod, done map[string]bool) {
	now := c.now()
	referenced := map[string]bool{}
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" && !referenced[n] {
			referenced[n] = true
			if _, ok := c.nodes.Get("", n); !ok {
				if _, seen := c.missing[n]; !seen {
					c.missing[n] = now
				}
			}
		}
	}
	gone := map[string]bool{}
	for n, since := range c.missing {
		// Look again: the node may have come back, or no pod needs it.
		if _, ok := c.nodes.Get("", n); ok || !referenced[n] {
			delete(c.missing, n)
			continue
		}
		if now.Sub(since) >= c.quarantine {
			gone[n] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	cond := &corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: reasonDeletionByPodGC, Message: "PodGC: node no longer exists",
	}
	for _, p := range pods {
		if gone[p.Spec.NodeName] {
			c.log.WithField("pod", controller.Key(p)).WithField("node", p.Spec.NodeName).Info("deleting orphaned pod")
			c.failAndDelete(ctx, p, cond, done)
		}
	}
}

// gcUnscheduledTerminating deletes pods being deleted that no node will
// ever finish.
func (c *Controller) gcUnscheduledTerminating(ctx context.Context, pods []*corev1.Pod, done map[string]bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			c.failAndDelete(ctx, p, nil, done)
		}
	}
}

// failAndDelete moves a pod that has not terminated to Failed (with cond,
// when given), since no kubelet will, then deletes it without grace.
// Failures are logged: the next pass tries again.
func (c *Controller) failAndDelete(ctx context.Context, pod *corev1.Pod, cond *corev1.PodCondition, done map[string]bool) {
	key := controller.Key(pod)
	if done[key] {
		return
	}
	done[key] = true
	log := c.log.WithField("pod", key)
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		p := pod.DeepCopy()
		p.Status.Phase = corev1.PodFailed
		if cond != nil {
			setCondition(&p.Status, *cond, metav1.NewTime(c.now()))
		}
		if _, err := c.env.Client.UpdateStatus(ctx, p); err != nil && !apierrors.IsNotFound(err) {
			log.WithError(err).Debug("mark pod failed")
			return
		}
	}
	if err := c.env.Client.Delete(ctx, pod, metav1.NewDeleteOptions(0)); err != nil && !apierrors.IsNotFound(err) {
		log.WithError(err).Debug("delete pod")
	}
}

// setCondition adds cond or replaces the condition of its type, keeping
// the transition time when the status does not change.
func setCondition(st *corev1.PodStatus, cond corev1.PodCondition, now metav1.Time) {
	cond.LastTransitionTime = now
	for i := range st.Conditions {
		if st.Conditions[i].Type == cond.Type {
			if st.Conditions[i].Status == cond.Status {
				cond.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = cond
			return
		}
	}
	st.Conditions = append(st.Conditions, cond)
}
