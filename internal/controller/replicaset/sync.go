package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// sync moves one ReplicaSet toward its spec: claim its pods, create or
// delete pods when the cache shows all earlier writes, then write status.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name := controller.SplitKey(key)
	rs, ok := c.rs.Get(ns, name)
	if !ok {
		c.exp.forget(key)
		return nil
	}
	needsSync := c.exp.satisfied(key)
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return fmt.Errorf("replicaset %s: selector: %w", key, err)
	}
	all := c.pods.List(ns, nil)
	var active, terminating []*corev1.Pod
	for _, p := range all {
		if isActive(p) {
			active = append(active, p)
		} else if isTerminating(p) && owns(rs, p) && sel.Matches(labels.Set(p.Labels)) {
			terminating = append(terminating, p)
		}
	}
	active, err = c.claim(ctx, rs, sel, active)
	if err != nil {
		return err
	}
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manage(ctx, rs, active)
	}
	st := c.status(rs, active, terminating, manageErr)
	updated, err := c.writeStatus(ctx, rs, st)
	if err != nil {
		return errors.Join(manageErr, err)
	}
	if wait, ok := c.nextAvailable(updated, active); ok && manageErr == nil {
		c.queue.AddAfter(key, wait)
	}
	return manageErr
}

// nextAvailable returns how long until the first ready pod of active
// that is not yet available becomes so (ready for minReadySeconds), so
// that status.availableReplicas follows without a pod event.
func (c *Controller) nextAvailable(rs *appsv1.ReplicaSet, active []*corev1.Pod) (time.Duration, bool) {
	if rs.Spec.MinReadySeconds == 0 {
		return 0, false
	}
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	now := c.now()
	var next time.Duration
	found := false
	for _, p := range active {
		cond := readyCondition(p)
		if cond == nil || cond.Status != corev1.ConditionTrue || cond.LastTransitionTime.IsZero() ||
			isAvailable(p, rs.Spec.MinReadySeconds, now) {
			continue
		}
		wait := cond.LastTransitionTime.Add(minReady).Sub(now) + time.Second
		if !found || wait < next {
			next, found = wait, true
		}
	}
	return next, found
}

func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

func owns(rs *appsv1.ReplicaSet, p *corev1.Pod) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.UID == rs.UID
}

// claim returns the pods rs controls, adopting orphans its selector
// matches and releasing owned pods it no longer matches (Kubernetes'
// ControllerRefManager).
func (c *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	var errs []error
	for _, p := range pods {
		match := sel.Matches(labels.Set(p.Labels))
		if ref := metav1.GetControllerOf(p); ref != nil {
			if ref.UID != rs.UID {
				continue
			}
			if match {
				out = append(out, p)
				continue
			}
			if rs.DeletionTimestamp != nil {
				continue
			}
			if err := c.release(ctx, rs, p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if rs.DeletionTimestamp != nil || !match || p.DeletionTimestamp != nil {
			continue
		}
		adopted, err := c.adopt(ctx, rs, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if adopted != nil {
			out = append(out, adopted)
		}
	}
	return out, errors.Join(errs...)
}

func (c *Controller) adopt(ctx context.Context, rs *appsv1.ReplicaSet, p *corev1.Pod) (*corev1.Pod, error) {
	// Kubernetes re-reads the owner before adopting: a ReplicaSet deleted
	// or replaced since the list must not take pods.
	if cur, ok := c.rs.Get(rs.Namespace, rs.Name); !ok || cur.UID != rs.UID || cur.DeletionTimestamp != nil {
		return nil, nil
	}
	pod := p.DeepCopy()
	pod.OwnerReferences = append(pod.OwnerReferences, *ownerRef(rs))
	obj, err := c.client.Update(ctx, pod)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.log.WithField("pod", controller.Key(p)).WithField("replicaset", controller.Key(rs)).Debug("adopted pod")
	if got, ok := obj.(*corev1.Pod); ok {
		return got, nil
	}
	return pod, nil
}

func (c *Controller) release(ctx context.Context, rs *appsv1.ReplicaSet, p *corev1.Pod) error {
	pod := p.DeepCopy()
	refs := pod.OwnerReferences[:0]
	for _, r := range pod.OwnerReferences {
		if r.UID != rs.UID {
			refs = append(refs, r)
		}
	}
	pod.OwnerReferences = refs
	if len(refs) == 0 {
		pod.OwnerReferences = nil
	}
	_, err := c.client.Update(ctx, pod)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.log.WithField("pod", controller.Key(p)).WithField("replicaset", controller.Key(rs)).Debug("released pod")
	return nil
}

func ownerRef(rs *appsv1.ReplicaSet) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: rsKind.GroupVersion().String(), Kind: rsKind.Kind,
		Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}
}

// manage creates or deletes pods so that active has spec.replicas pods.
func (c *Controller) manage(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	key := controller.Key(rs)
	diff := len(active) - int(replicas(rs))
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		c.exp.expectCreations(key, n)
		c.queue.AddAfter(key, expectationsTimeout)
		done, err := slowStartBatch(n, func() error { return c.createPod(ctx, rs) })
		for i := done; i < n; i++ {
			c.exp.creationObserved(key)
		}
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		victims := podsToDelete(active, c.relatedPods(rs), n, c.now())
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = controller.Key(p)
		}
		c.exp.expectDeletions(key, keys)
		c.queue.AddAfter(key, expectationsTimeout)
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.deletePodOf(ctx, rs, p)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

// slowStartBatch calls fn count times in batches of 1, 2, 4, ... run in
// parallel, stopping after the first batch with a failure (so a quota or
// a bad template fails once, not count times). It returns how many calls
// succeeded and the first error.
func slowStartBatch(count int, fn func() error) (int, error) {
	done := 0
	for batch := min(count, 1); batch > 0; batch = min(2*batch, count-done) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fn()
			}()
		}
		wg.Wait()
		var first error
		for _, err := range errs {
			if err == nil {
				done++
			} else if first == nil {
				first = err
			}
		}
		if first != nil {
			return done, first
		}
	}
	return done, nil
}

func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod, err := podFromTemplate(rs)
	if err != nil {
		c.recorder.Eventf(ctx, rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return err
	}
	obj, err := c.client.Create(ctx, pod)
	if err != nil {
		c.recorder.Eventf(ctx, rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return err
	}
	created, _ := obj.(*corev1.Pod)
	if created != nil {
		pod = created
	}
	c.recorder.Eventf(ctx, rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", pod.Name)
	return nil
}

// podFromTemplate builds a pod of rs from its template (Kubernetes'
// GetPodFromTemplate).
func podFromTemplate(rs *appsv1.ReplicaSet) (*corev1.Pod, error) {
	t := &rs.Spec.Template
	if len(t.Labels) == 0 {
		return nil, errors.New("unable to create pods, no labels")
	}
	prefix := rs.Name + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"x")) != 0 {
		prefix = rs.Name
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: rs.Namespace, GenerateName: prefix,
			Labels: copyMap(t.Labels), Annotations: copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*ownerRef(rs)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return pod, nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (c *Controller) deletePodOf(ctx context.Context, rs *appsv1.ReplicaSet, p *corev1.Pod) error {
	err := c.client.Delete(ctx, p, &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	if err != nil {
		c.exp.deletionObserved(controller.Key(rs), controller.Key(p))
		if apierrors.IsNotFound(err) {
			return nil
		}
		c.recorder.Eventf(ctx, rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s: %w", controller.Key(p), err)
	}
	c.recorder.Eventf(ctx, rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	return nil
}

// relatedPods returns the active pods of the ReplicaSets that share rs's
// controller (a Deployment's other ReplicaSets), for ranking pods doubled
// up on a node.
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return nil
	}
	siblings := map[string]bool{}
	for _, o := range c.rs.List(rs.Namespace, nil) {
		if r := metav1.GetControllerOf(o); r != nil && r.UID == ref.UID {
			siblings[string(o.UID)] = true
		}
	}
	var out []*corev1.Pod
	for _, p := range c.pods.List(rs.Namespace, nil) {
		if r := metav1.GetControllerOf(p); r != nil && siblings[string(r.UID)] {
			out = append(out, p)
		}
	}
	return out
}
