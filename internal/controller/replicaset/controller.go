// Package replicaset is the ReplicaSet controller: it creates and deletes
// pods so that each ReplicaSet has spec.replicas of them, adopts orphan
// pods its selector matches, releases the pods it no longer matches, and
// reports the counts in the ReplicaSet's status, as Kubernetes' does.
package replicaset

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

const (
	// workers is Kubernetes' --concurrent-replicaset-syncs default.
	workers = 5
	// burstReplicas caps the pods one sync creates or deletes.
	burstReplicas = 500
)

var (
	rsResource  = schema.GroupResource{Group: "apps", Resource: "replicasets"}
	podResource = schema.GroupResource{Resource: "pods"}
	rsKind      = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
)

// Controller is the ReplicaSet controller.
type Controller struct {
	client   controller.Client
	rs       controller.Lister[*appsv1.ReplicaSet]
	pods     controller.Lister[*corev1.Pod]
	queue    controller.Queue
	recorder *controller.Recorder
	log      *logrus.Entry
	exp      *expectations
	now      func() time.Time
}

// New returns a ReplicaSet controller over env.
func New(env controller.Env) *Controller {
	rec := env.Recorder("replicaset-controller")
	rec.Kinds = func(runtime.Object) (string, string) { return rsKind.ToAPIVersionAndKind() }
	c := &Controller{
		client:   env.Client,
		rs:       controller.Lister[*appsv1.ReplicaSet]{Res: env.Resources.Resource(rsResource)},
		pods:     controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(podResource)},
		queue:    env.NewQueue("replicaset"),
		recorder: rec,
		log:      env.Log.WithField("controller", "replicaset"),
		now:      time.Now,
	}
	c.exp = newExpectations(func() time.Time { return c.now() })
	return c
}

// Run watches ReplicaSets and pods and syncs ReplicaSets until ctx is
// done. It returns nil on a clean stop.
func (c *Controller) Run(ctx context.Context) error {
	go controller.Watch(ctx, c.rs.Res, controller.Handler{
		Add:    c.enqueue,
		Update: func(_, obj runtime.Object) { c.enqueue(obj) },
		Delete: func(obj runtime.Object) {
			c.exp.forget(controller.Key(obj))
			c.enqueue(obj)
		},
	})
	go controller.Watch(ctx, c.pods.Res, controller.Handler{Add: c.addPod, Update: c.updatePod, Delete: c.deletePod})
	return controller.Run(ctx, c.queue, workers, c.log, c.sync)
}

func (c *Controller) enqueue(obj runtime.Object) { c.queue.Add(controller.Key(obj)) }

// controllerOf returns the ReplicaSet that ref names, if it is the one in
// the cache (same UID).
func (c *Controller) controllerOf(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != rsKind.Kind || ref.APIVersion != rsKind.GroupVersion().String() {
		return nil
	}
	rs, ok := c.rs.Get(namespace, ref.Name)
	if !ok || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// matching returns the ReplicaSets whose selector matches an orphan pod.
func (c *Controller) matching(pod *corev1.Pod) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range c.rs.List(pod.Namespace, nil) {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	return out
}

func (c *Controller) addPod(obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (a restart, or a
		// watch re-list): it must not count as a creation.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if rs := c.controllerOf(pod.Namespace, ref); rs != nil {
			key := controller.Key(rs)
			c.exp.creationObserved(key)
			c.queue.Add(key)
		}
		return
	}
	for _, rs := range c.matching(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(oldObj, obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	old, _ := oldObj.(*corev1.Pod)
	if old == nil {
		c.addPod(pod)
		return
	}
	labelsChanged := !labels.Equals(old.Labels, pod.Labels)
	if pod.DeletionTimestamp != nil {
		// A graceful deletion: the controller may act as soon as the pod
		// is terminating, not only once it is gone.
		c.deletePod(pod)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	ref, oldRef := metav1.GetControllerOf(pod), metav1.GetControllerOf(old)
	refChanged := !refEqual(ref, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.controllerOf(old.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if ref != nil {
		rs := c.controllerOf(pod.Namespace, ref)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		if rs.Spec.MinReadySeconds > 0 && !isReady(old) && isReady(pod) {
			// Available once ready for minReadySeconds: look again then.
			c.queue.AddAfter(controller.Key(rs), time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.matching(pod) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	rs := c.controllerOf(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key := controller.Key(rs)
	c.exp.deletionObserved(key, controller.Key(pod))
	c.queue.Add(key)
}

func refEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}
