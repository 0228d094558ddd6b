package deployment

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

func templateHash(d *appsv1.Deployment) string {
	return controller.TemplateHash(d.Spec.Template, d.Status.CollisionCount)
}

// ensureNewReplicaSet creates the ReplicaSet of the current template, or
// gives an existing one (a rollback to an old template) the next revision.
func (c *Controller) ensureNewReplicaSet(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	next := strconv.FormatInt(maxRevision(old)+1, 10)
	if newRS != nil {
		rs := newRS.DeepCopy()
		prev := rs.Annotations[RevisionAnnotation]
		rs.Annotations[RevisionAnnotation] = next
		if prev != "" {
			hist := strings.Trim(rs.Annotations[RevisionHistoryAnnotation]+","+prev, ",")
			rs.Annotations[RevisionHistoryAnnotation] = hist
		}
		updated, err := c.client.Update(ctx, rs)
		if err != nil {
			return nil, err
		}
		return updated.(*appsv1.ReplicaSet), nil
	}
	hash := templateHash(d)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	var initial int32
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		initial = scaleUpTarget(d, nil, old)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: tmpl.Labels,
			Annotations:     replicaSetAnnotations(d, next),
			OwnerReferences: []metav1.OwnerReference{ownerRef(d)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &initial, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	setAnnotations(rs, d)
	created, err := c.client.Create(ctx, rs)
	if apierrors.IsAlreadyExists(err) {
		// A ReplicaSet of that name with another template: a hash
		// collision. Count it so the next sync picks another name.
		dd := d.DeepCopy()
		n := int32(1)
		if dd.Status.CollisionCount != nil {
			n = *dd.Status.CollisionCount + 1
		}
		dd.Status.CollisionCount = &n
		if _, uerr := c.client.UpdateStatus(ctx, dd); uerr != nil {
			return nil, uerr
		}
		return nil, fmt.Errorf("replica set %s exists with another template", rs.Name)
	}
	if err != nil {
		return nil, err
	}
	c.recorder.Eventf(ctx, d, "Normal", "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", rs.Name, initial)
	return created.(*appsv1.ReplicaSet), nil
}

// replicaSetAnnotations copies the Deployment's annotations (change-cause
// among them, for `kubectl rollout history`) to a new ReplicaSet, less the
// ones Kubernetes keeps apart, and sets its revision.
func replicaSetAnnotations(d *appsv1.Deployment, revision string) map[string]string {
	out := map[string]string{}
	for k, v := range d.Annotations {
		switch k {
		case "kubectl.kubernetes.io/last-applied-configuration", RevisionAnnotation, RevisionHistoryAnnotation,
			DesiredReplicasAnnotation, MaxReplicasAnnotation:
			continue
		}
		out[k] = v
	}
	out[RevisionAnnotation] = revision
	return out
}

// surgeAndUnavailable resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against the desired replicas; both zero means one
// unavailable, as Kubernetes does.
func surgeAndUnavailable(d *appsv1.Deployment) (int32, int32) {
	n := int(replicas(d.Spec.Replicas))
	surgeV, unavailV := intstr.FromString("25%"), intstr.FromString("25%")
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surgeV = *ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailV = *ru.MaxUnavailable
		}
	}
	surge, _ := intstr.GetScaledValueFromIntOrPercent(&surgeV, n, true)
	unavail, _ := intstr.GetScaledValueFromIntOrPercent(&unavailV, n, false)
	if surge == 0 && unavail == 0 {
		unavail = 1
	}
	return int32(surge), int32(unavail)
}

func sumSpec(rss ...[]*appsv1.ReplicaSet) int32 {
	var n int32
	for _, list := range rss {
		for _, rs := range list {
			n += replicas(rs.Spec.Replicas)
		}
	}
	return n
}

// scaleUpTarget is the new ReplicaSet's replicas under RollingUpdate:
// grow it as far as maxSurge allows, never past the desired count.
func scaleUpTarget(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) int32 {
	want := replicas(d.Spec.Replicas)
	cur := int32(0)
	if newRS != nil {
		cur = replicas(newRS.Spec.Replicas)
	}
	if cur >= want {
		return want
	}
	surge, _ := surgeAndUnavailable(d)
	total := sumSpec(old) + cur
	room := want + surge - total
	if room <= 0 {
		return cur
	}
	return min(cur+room, want)
}

// rollingUpdate grows the new ReplicaSet within maxSurge and shrinks the
// old ones while at least replicas-maxUnavailable pods stay available.
func (c *Controller) rollingUpdate(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	if target := scaleUpTarget(d, newRS, old); target != replicas(newRS.Spec.Replicas) || newRS.Annotations[DesiredReplicasAnnotation] != strconv.Itoa(int(replicas(d.Spec.Replicas))) {
		var err error
		if newRS, err = c.scale(ctx, d, newRS, target); err != nil {
			return err
		}
	}
	_, unavail := surgeAndUnavailable(d)
	minAvailable := replicas(d.Spec.Replicas) - unavail
	// As Kubernetes: never take down more than leaves minAvailable of all
	// the pods that exist (counting the new ones not yet available as
	// down), and count no ReplicaSet as having more available pods than
	// it is scaled to (its status may lag a scale-down).
	maxScaledDown := sumSpec(old) + replicas(newRS.Spec.Replicas) - minAvailable - max(replicas(newRS.Spec.Replicas)-available(newRS), 0)
	if maxScaledDown <= 0 {
		return nil
	}
	// Old pods that are not available cost no availability: drop them
	// first, then take available ones down to the floor.
	spec := make([]int32, len(old))
	for i, rs := range old {
		spec[i] = replicas(rs.Spec.Replicas)
		down := min(max(spec[i]-available(rs), 0), maxScaledDown)
		spec[i] -= down
		maxScaledDown -= down
	}
	total := available(newRS)
	for _, rs := range old {
		total += available(rs)
	}
	budget := min(total-minAvailable, maxScaledDown)
	for i := range old {
		if budget <= 0 {
			break
		}
		down := min(spec[i], budget)
		spec[i] -= down
		budget -= down
	}
	for i, rs := range old {
		if spec[i] != replicas(rs.Spec.Replicas) {
			if _, err := c.scale(ctx, d, rs, spec[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// available is how many of a ReplicaSet's pods count as available: its
// status, capped by the replicas it is scaled to.
func available(rs *appsv1.ReplicaSet) int32 {
	return min(rs.Status.AvailableReplicas, replicas(rs.Spec.Replicas))
}

// recreate scales every old ReplicaSet to zero, waits for their pods to
// go, then brings the new one up.
func (c *Controller) recreate(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	waiting := false
	for _, rs := range old {
		if replicas(rs.Spec.Replicas) > 0 {
			if _, err := c.scale(ctx, d, rs, 0); err != nil {
				return err
			}
			waiting = true
		}
		if rs.Status.Replicas > 0 {
			waiting = true
		}
	}
	if waiting {
		return nil
	}
	_, err := c.scale(ctx, d, newRS, replicas(d.Spec.Replicas))
	return err
}

// cleanup deletes old, empty ReplicaSets beyond revisionHistoryLimit,
// oldest first.
func (c *Controller) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	limit := int32(10)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = *d.Spec.RevisionHistoryLimit
	}
	var empty []*appsv1.ReplicaSet
	for _, rs := range old {
		if replicas(rs.Spec.Replicas) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			empty = append(empty, rs)
		}
	}
	for i := 0; i < len(empty)-int(limit); i++ {
		if err := c.client.Delete(ctx, empty[i], nil); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
