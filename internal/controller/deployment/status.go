package deployment

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncStatus writes the Deployment's status from its ReplicaSets (only
// when it changed) and the revision annotation of the new ReplicaSet.
func (c *Controller) syncStatus(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, rss []*appsv1.ReplicaSet) error {
	st := computeStatus(d, newRS, rss)
	if newRS != nil {
		if rev := newRS.Annotations[RevisionAnnotation]; rev != "" && d.Annotations[RevisionAnnotation] != rev {
			dd := d.DeepCopy()
			if dd.Annotations == nil {
				dd.Annotations = map[string]string{}
			}
			dd.Annotations[RevisionAnnotation] = rev
			updated, err := c.client.Update(ctx, dd)
			if err != nil {
				return err
			}
			d = updated.(*appsv1.Deployment)
		}
	}
	if equality.Semantic.DeepEqual(st, d.Status) {
		return nil
	}
	dd := d.DeepCopy()
	dd.Status = st
	_, err := c.client.UpdateStatus(ctx, dd)
	return err
}

func computeStatus(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, rss []*appsv1.ReplicaSet) appsv1.DeploymentStatus {
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
	for _, rs := range rss {
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	want := replicas(d.Spec.Replicas)
	st.UnavailableReplicas = max(want-st.AvailableReplicas, 0)
	_, unavail := surgeAndUnavailable(d)
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		unavail = 0
	}
	now := metav1.Now()
	available := condition(d, appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now)
	if st.AvailableReplicas >= want-unavail {
		available = condition(d, appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
	}
	st.Conditions = append(st.Conditions, available)
	if newRS != nil {
		st.Conditions = append(st.Conditions, progressingCondition(d, newRS, st, now))
	}
	return st
}

// progressingCondition is the Progressing condition: complete, still
// progressing (its lastUpdateTime moving whenever the counts move), or,
// without progress for progressDeadlineSeconds, ProgressDeadlineExceeded.
func progressingCondition(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, st appsv1.DeploymentStatus, now metav1.Time) appsv1.DeploymentCondition {
	want := replicas(d.Spec.Replicas)
	if st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want && replicas(newRS.Spec.Replicas) == want {
		return condition(d, appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable",
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name), now)
	}
	c := condition(d, appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated",
		fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), now)
	prev := d.Status
	moved := prev.UpdatedReplicas != st.UpdatedReplicas || prev.AvailableReplicas != st.AvailableReplicas ||
		prev.ReadyReplicas != st.ReadyReplicas || prev.Replicas != st.Replicas || prev.ObservedGeneration != st.ObservedGeneration
	if moved {
		c.LastUpdateTime = now
		return c
	}
	for _, prevCond := range prev.Conditions {
		if prevCond.Type == appsv1.DeploymentProgressing && prevCond.Reason == "ProgressDeadlineExceeded" {
			return prevCond // timed out, and still nothing moves
		}
	}
	if d.Spec.ProgressDeadlineSeconds != nil && !d.Spec.Paused {
		deadline := time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second
		if now.Sub(c.LastUpdateTime.Time) > deadline {
			return condition(d, appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded",
				fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name), now)
		}
	}
	return c
}

// condition builds a condition, keeping the old one's timestamps when
// nothing about it changed (so that an unchanged status writes nothing).
func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, now metav1.Time) appsv1.DeploymentCondition {
	c := appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
	for _, old := range d.Status.Conditions {
		if old.Type != t {
			continue
		}
		if old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		if old.Status == status && old.Reason == reason && old.Message == msg {
			c.LastUpdateTime = old.LastUpdateTime
		}
	}
	return c
}
