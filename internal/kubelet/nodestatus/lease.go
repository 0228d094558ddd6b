package nodestatus

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A failed renewal is retried with back-off, as the kubelet's lease
// controller does.
const (
	leaseFirstDelay = 200 * time.Millisecond
	leaseMaxDelay   = 7 * time.Second
)

// runLease renews the Lease every LeaseInterval until ctx is done.
func (a *Agent) runLease(ctx context.Context) {
	for {
		a.renewLease(ctx)
		if !a.wait(ctx, a.cfg.LeaseInterval) {
			return
		}
	}
}

// renewLease renews the Lease, retrying with back-off until it works or
// ctx is done.
func (a *Agent) renewLease(ctx context.Context) {
	delay := leaseFirstDelay
	for {
		err := a.tryRenewLease(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.log.WithError(err).WithField("retryIn", delay).Warn("Unable to renew node lease")
		if !a.wait(ctx, delay) {
			return
		}
		delay = min(2*delay, leaseMaxDelay)
	}
}

// tryRenewLease updates the cached Lease, first reading (or creating) it
// when nothing is cached, as after a conflict.
func (a *Agent) tryRenewLease(ctx context.Context) error {
	if a.lease == nil {
		cur := &coordinationv1.Lease{}
		err := a.cfg.Client.Get(ctx, cur, corev1.NamespaceNodeLease, a.cfg.NodeName)
		switch {
		case apierrors.IsNotFound(err):
			want := &coordinationv1.Lease{
				TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
				ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease},
			}
			a.fillLease(want)
			out, err := a.cfg.Client.Create(ctx, want)
			if err != nil {
				return fmt.Errorf("create lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
			}
			a.lease = asLease(out, want)
			return nil
		case err != nil:
			return fmt.Errorf("get lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
		}
		a.lease = cur
	}
	upd := a.lease.DeepCopy()
	a.fillLease(upd)
	out, err := a.cfg.Client.Update(ctx, upd)
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			a.lease = nil
		}
		return fmt.Errorf("update lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
	}
	a.lease = asLease(out, upd)
	return nil
}

// fillLease sets the holder, duration, renew time and the owner reference
// to the Node.
func (a *Agent) fillLease(l *coordinationv1.Lease) {
	holder := a.cfg.NodeName
	duration := int32(LeaseDurationSeconds)
	renew := metav1.NewMicroTime(a.clock.Now())
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &duration
	l.Spec.RenewTime = &renew
	node := a.Node()
	if node == nil || node.UID == "" {
		return
	}
	refs := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	for _, r := range l.OwnerReferences {
		if r.UID == node.UID {
			return
		}
		if r.Kind != "Node" {
			refs = append(refs, r)
		}
	}
	l.OwnerReferences = refs
}

func asLease(out any, sent *coordinationv1.Lease) *coordinationv1.Lease {
	if l, ok := out.(*coordinationv1.Lease); ok && l != nil {
		return l
	}
	return sent
}
