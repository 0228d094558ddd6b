// Package nodelifecycle watches node heartbeats (Leases in kube-node-lease
// and the Ready condition): a node silent for longer than the grace period
// becomes Ready=Unknown and is tainted unreachable, a node reporting
// NotReady is tainted not-ready, and the NoExecute taints evict the pods
// that do not tolerate them (after their tolerationSeconds), as
// Kubernetes' node lifecycle controller and taint manager do.
package nodelifecycle

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/mizzen-dev/mizzen/internal/apiserver/admission"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Controller is the node lifecycle controller.
type Controller struct {
	client   controller.Client
	recorder *controller.Recorder
	nodes    controller.Lister[*corev1.Node]
	leases   controller.Lister[*coordinationv1.Lease]
	pods     controller.Lister[*corev1.Pod]
	grace    time.Duration
	// Period is how often nodes are checked (5 s, as Kubernetes).
	Period time.Duration
	log    *logrus.Entry
	now    func() time.Time
	// seen holds, per node, the last heartbeat read and when this
	// controller first saw it: a node's silence is counted from that, so
	// a restarted server gives every node a full grace period instead of
	// judging it by stale stored heartbeats. Only the sync loop uses it.
	seen map[string]observation
}

type observation struct{ beat, at time.Time }

// New returns the node lifecycle controller.
func New(env controller.Env) *Controller {
	grace := env.Config.NodeMonitorGracePeriod
	if grace <= 0 {
		grace = 40 * time.Second
	}
	return &Controller{
		client:   env.Client,
		recorder: env.Recorder("node-controller"),
		nodes:    controller.Lister[*corev1.Node]{Res: env.Resources.Resource(schema.GroupResource{Resource: "nodes"})},
		leases:   controller.Lister[*coordinationv1.Lease]{Res: env.Resources.Resource(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"})},
		pods:     controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(schema.GroupResource{Resource: "pods"})},
		grace:    grace,
		Period:   min(5*time.Second, grace/2),
		log:      env.Log.WithField("controller", "nodelifecycle"),
		now:      time.Now,
		seen:     map[string]observation{},
	}
}

// Run checks every node each Period until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.Period)
	defer t.Stop()
	for {
		present := map[string]bool{}
		for _, n := range c.nodes.List("", nil) {
			present[n.Name] = true
			if err := c.syncNode(ctx, n); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
				c.log.WithError(err).WithField("node", n.Name).Debug("sync node")
			}
		}
		for name := range c.seen {
			if !present[name] {
				delete(c.seen, name)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// heartbeat is the node's latest sign of life: its Lease renewal, its
// Ready condition's heartbeat, or (never heard from) its creation.
func (c *Controller) heartbeat(n *corev1.Node) time.Time {
	last := n.CreationTimestamp.Time
	if l, ok := c.leases.Get(corev1.NamespaceNodeLease, n.Name); ok && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(last) {
		last = l.Spec.RenewTime.Time
	}
	if r := ready(n); r != nil && r.LastHeartbeatTime.After(last) {
		last = r.LastHeartbeatTime.Time
	}
	return last
}

// silentFor is how long the node's heartbeat has not changed, as this
// controller observed it.
func (c *Controller) silentFor(n *corev1.Node) time.Duration {
	beat := c.heartbeat(n)
	o, ok := c.seen[n.Name]
	if !ok || !o.beat.Equal(beat) {
		o = observation{beat: beat, at: c.now()}
		c.seen[n.Name] = o
	}
	return c.now().Sub(o.at)
}

func ready(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (c *Controller) syncNode(ctx context.Context, cached *corev1.Node) error {
	n := cached.DeepCopy()
	now := metav1.NewTime(c.now())
	if c.silentFor(n) > c.grace {
		if err := c.markUnknown(ctx, n, now); err != nil {
			return err
		}
	}
	var want []corev1.Taint
	switch r := ready(n); {
	case r == nil:
	case r.Status == corev1.ConditionUnknown:
		want = []corev1.Taint{{Key: admission.TaintUnreachable, Effect: corev1.TaintEffectNoSchedule}, {Key: admission.TaintUnreachable, Effect: corev1.TaintEffectNoExecute}}
	case r.Status == corev1.ConditionFalse:
		want = []corev1.Taint{{Key: admission.TaintNotReady, Effect: corev1.TaintEffectNoSchedule}, {Key: admission.TaintNotReady, Effect: corev1.TaintEffectNoExecute}}
	}
	n, err := c.setTaints(ctx, n, want, now)
	if err != nil {
		return err
	}
	return c.evict(ctx, n, now)
}

// markUnknown sets every condition of a silent node to Unknown.
func (c *Controller) markUnknown(ctx context.Context, n *corev1.Node, now metav1.Time) error {
	if r := ready(n); r != nil && r.Status == corev1.ConditionUnknown {
		return nil
	}
	if ready(n) == nil {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady})
	}
	for i := range n.Status.Conditions {
		cond := &n.Status.Conditions[i]
		cond.Status, cond.LastTransitionTime = corev1.ConditionUnknown, now
		cond.Reason, cond.Message = "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	updated, err := c.client.UpdateStatus(ctx, n)
	if err != nil {
		return err
	}
	*n = *updated.(*corev1.Node)
	c.recorder.Eventf(ctx, n, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
	return c.markPodsNotReady(ctx, n, now)
}

// markPodsNotReady sets the Ready condition of the node's pods to False,
// so that Services stop sending them traffic before they are evicted.
func (c *Controller) markPodsNotReady(ctx context.Context, n *corev1.Node, now metav1.Time) error {
	for _, p := range c.pods.ByIndex("fields", "spec.nodeName="+n.Name) {
		for i, cond := range p.Status.Conditions {
			if cond.Type != corev1.PodReady || cond.Status == corev1.ConditionFalse {
				continue
			}
			pp := p.DeepCopy()
			pp.Status.Conditions[i].Status, pp.Status.Conditions[i].LastTransitionTime = corev1.ConditionFalse, now
			pp.Status.Conditions[i].Reason, pp.Status.Conditions[i].Message = "NodeNotReady", "Node is not ready"
			if _, err := c.client.UpdateStatus(ctx, pp); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// setTaints makes the node's not-ready/unreachable taints exactly want
// (keeping the time a taint was added), leaving other taints alone.
func (c *Controller) setTaints(ctx context.Context, n *corev1.Node, want []corev1.Taint, now metav1.Time) (*corev1.Node, error) {
	var taints []corev1.Taint
	for _, t := range n.Spec.Taints {
		if t.Key != admission.TaintNotReady && t.Key != admission.TaintUnreachable {
			taints = append(taints, t)
		}
	}
	for _, w := range want {
		w.TimeAdded = &now
		for _, t := range n.Spec.Taints {
			if t.Key == w.Key && t.Effect == w.Effect {
				w.TimeAdded = t.TimeAdded
			}
		}
		if w.Effect != corev1.TaintEffectNoExecute {
			w.TimeAdded = nil
		}
		taints = append(taints, w)
	}
	if equality.Semantic.DeepEqual(taints, n.Spec.Taints) || (len(taints) == 0 && len(n.Spec.Taints) == 0) {
		return n, nil
	}
	nn := n.DeepCopy()
	nn.Spec.Taints = taints
	updated, err := c.client.Update(ctx, nn)
	if err != nil {
		return nil, err
	}
	return updated.(*corev1.Node), nil
}

// evict deletes the node's pods that do not tolerate its NoExecute taints
// (those tolerating them for tolerationSeconds, once that has passed).
func (c *Controller) evict(ctx context.Context, n *corev1.Node, now metav1.Time) error {
	var noExec []corev1.Taint
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			noExec = append(noExec, t)
		}
	}
	if len(noExec) == 0 {
		return nil
	}
	for _, p := range c.pods.ByIndex("fields", "spec.nodeName="+n.Name) {
		if p.DeletionTimestamp != nil || !evictable(p, noExec, now.Time) {
			continue
		}
		c.recorder.Eventf(ctx, p, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", p.Namespace, p.Name)
		if err := c.client.Delete(ctx, p, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// evictable reports whether some taint is not tolerated, or tolerated only
// for a time that has passed since the taint was added.
func evictable(p *corev1.Pod, taints []corev1.Taint, now time.Time) bool {
	for _, t := range taints {
		tolerated, forever, until := false, false, time.Time{}
		for _, tol := range p.Spec.Tolerations {
			if !tol.ToleratesTaint(klog.Background(), &t, false) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds == nil {
				forever = true
				break
			}
			added := now
			if t.TimeAdded != nil {
				added = t.TimeAdded.Time
			}
			if u := added.Add(time.Duration(*tol.TolerationSeconds) * time.Second); u.After(until) {
				until = u
			}
		}
		if !tolerated || (!forever && !now.Before(until)) {
			return true
		}
	}
	return false
}
