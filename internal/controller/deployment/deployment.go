// Package deployment is the Deployment controller: it rolls a Deployment's
// pod template out through ReplicaSets, one per template (named by the
// template's hash), with the RollingUpdate or Recreate strategy, keeps
// revision history, and reports the Deployment's status.
package deployment

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Annotations Kubernetes' Deployment controller keeps.
const (
	RevisionAnnotation        = "deployment.kubernetes.io/revision"
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
)

// Controller is the Deployment controller.
type Controller struct {
	client      controller.Client
	recorder    *controller.Recorder
	deployments controller.Lister[*appsv1.Deployment]
	replicaSets controller.Lister[*appsv1.ReplicaSet]
	queue       controller.Queue
	log         *logrus.Entry
}

// New returns the Deployment controller.
func New(env controller.Env) *Controller {
	return &Controller{
		client:      env.Client,
		recorder:    env.Recorder("deployment-controller"),
		deployments: controller.Lister[*appsv1.Deployment]{Res: env.Resources.Resource(schema.GroupResource{Group: "apps", Resource: "deployments"})},
		replicaSets: controller.Lister[*appsv1.ReplicaSet]{Res: env.Resources.Resource(schema.GroupResource{Group: "apps", Resource: "replicasets"})},
		queue:       env.NewQueue("deployment"),
		log:         env.Log.WithField("controller", "deployment"),
	}
}

// Run syncs Deployments until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	go controller.Watch(ctx, c.deployments.Res, controller.EnqueueHandler(c.queue))
	go controller.Watch(ctx, c.replicaSets.Res, controller.Handler{
		Add:    c.enqueueOwner,
		Update: func(old, obj runtime.Object) { c.enqueueOwner(old); c.enqueueOwner(obj) },
		Delete: c.enqueueOwner,
	})
	return controller.Run(ctx, c.queue, 2, c.log, c.sync)
}

// enqueueOwner queues the Deployment that owns a ReplicaSet, or the
// Deployments whose selector matches an orphan one.
func (c *Controller) enqueueOwner(obj runtime.Object) {
	rs := obj.(*appsv1.ReplicaSet)
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if ref.Kind == "Deployment" {
			c.queue.Add(rs.Namespace + "/" + ref.Name)
		}
		return
	}
	for _, d := range c.deployments.List(rs.Namespace, nil) {
		if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			c.queue.Add(controller.Key(d))
		}
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name := controller.SplitKey(key)
	cached, ok := c.deployments.Get(ns, name)
	if !ok || cached.DeletionTimestamp != nil {
		return nil
	}
	d := cached.DeepCopy()
	rss, err := c.ownedReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	newRS, old := splitReplicaSets(d, rss)
	if d.Spec.Paused {
		return c.syncStatus(ctx, d, newRS, rss)
	}
	if newRS == nil || revisionOf(newRS) < maxRevision(old) {
		if newRS, err = c.ensureNewReplicaSet(ctx, d, newRS, old); err != nil {
			return err
		}
		rss = append(old, newRS)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		err = c.recreate(ctx, d, newRS, old)
	} else {
		err = c.rollingUpdate(ctx, d, newRS, old)
	}
	if err != nil {
		return err
	}
	if err := c.cleanup(ctx, d, old); err != nil {
		return err
	}
	if d.Spec.ProgressDeadlineSeconds != nil {
		// Look again when the rollout would time out.
		c.queue.AddAfter(key, time.Duration(*d.Spec.ProgressDeadlineSeconds)*time.Second+time.Second)
	}
	return c.syncStatus(ctx, d, newRS, rss)
}

// ownedReplicaSets returns the ReplicaSets the Deployment controls,
// adopting orphans its selector matches and releasing those it no longer
// matches.
func (c *Controller) ownedReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil, nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range c.replicaSets.List(d.Namespace, nil) {
		ref := metav1.GetControllerOf(rs)
		switch {
		case ref != nil && ref.UID == d.UID:
			if !sel.Matches(labels.Set(rs.Labels)) {
				r := rs.DeepCopy()
				r.OwnerReferences = removeOwner(r.OwnerReferences, d.UID)
				if _, err := c.client.Update(ctx, r); err != nil {
					return nil, err
				}
				continue
			}
			out = append(out, rs)
		case ref == nil && rs.DeletionTimestamp == nil && sel.Matches(labels.Set(rs.Labels)):
			r := rs.DeepCopy()
			r.OwnerReferences = append(r.OwnerReferences, ownerRef(d))
			updated, err := c.client.Update(ctx, r)
			if err != nil {
				return nil, err
			}
			out = append(out, updated.(*appsv1.ReplicaSet))
		}
	}
	return out, nil
}

func ownerRef(d *appsv1.Deployment) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: &yes, BlockOwnerDeletion: &yes}
}

func removeOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if r.UID != uid {
			out = append(out, r)
		}
	}
	return out
}

// splitReplicaSets finds the ReplicaSet whose template is the
// Deployment's (the newest, if several) and the others, oldest first.
func splitReplicaSets(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet) {
	sort.Slice(rss, func(i, j int) bool {
		if !rss[i].CreationTimestamp.Equal(&rss[j].CreationTimestamp) {
			return rss[i].CreationTimestamp.Before(&rss[j].CreationTimestamp)
		}
		return rss[i].Name < rss[j].Name
	})
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range rss {
		if newRS == nil && sameTemplate(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// sameTemplate compares a ReplicaSet's template, less its
// pod-template-hash label, with the Deployment's.
func sameTemplate(rsTemplate, dTemplate *corev1.PodTemplateSpec) bool {
	a, b := rsTemplate.DeepCopy(), dTemplate.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

func revisionOf(rs *appsv1.ReplicaSet) int64 {
	if rs == nil {
		return 0
	}
	n, _ := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return n
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revisionOf(rs))
	}
	return m
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// scale sets a ReplicaSet's replicas and records ScalingReplicaSet.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) (*appsv1.ReplicaSet, error) {
	from := replicas(rs.Spec.Replicas)
	want := rs.DeepCopy()
	want.Spec.Replicas = &n
	setAnnotations(want, d)
	if from == n && equality.Semantic.DeepEqual(want.Annotations, rs.Annotations) {
		return rs, nil
	}
	updated, err := c.client.Update(ctx, want)
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("scale %s: %w", rs.Name, err)
		}
		return nil, err
	}
	if from != n {
		dir := "up"
		if n < from {
			dir = "down"
		}
		c.recorder.Eventf(ctx, d, "Normal", "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, n)
	}
	return updated.(*appsv1.ReplicaSet), nil
}

// setAnnotations records the Deployment's desired and maximum replicas on
// a ReplicaSet, as Kubernetes does.
func setAnnotations(rs *appsv1.ReplicaSet, d *appsv1.Deployment) {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	surge := int32(0)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		surge, _ = surgeAndUnavailable(d)
	}
	rs.Annotations[DesiredReplicasAnnotation] = strconv.Itoa(int(replicas(d.Spec.Replicas)))
	rs.Annotations[MaxReplicasAnnotation] = strconv.Itoa(int(replicas(d.Spec.Replicas) + surge))
}
