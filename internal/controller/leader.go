package controller

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Elector runs a function while this process holds a Lease in
// kube-system, so that several servers sharing one etcd run one
// controller manager and one scheduler between them.
type Elector struct {
	// Name is the Lease's name (kube-controller-manager, kube-scheduler).
	Name string
	// Identity names this process in the Lease; a stable one (the node
	// name) lets a restarted server take its lease back at once.
	Identity string
	Client   Client
	Leases   Lister[*coordinationv1.Lease]
	// LeaseDuration is how long a lease not renewed stays held (15 s);
	// the leader renews every RetryPeriod (2 s) and gives up leading when
	// it could not renew for RenewDeadline (10 s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *logrus.Entry
	now                                       func() time.Time
}

// Run campaigns until ctx is done; while leading it runs lead with a
// context cancelled when leadership is lost. On a clean stop it releases
// the lease so that another server (or this one, restarted) takes over at
// once.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	if e.now == nil {
		e.now = time.Now
	}
	for ctx.Err() == nil {
		if !e.tryAcquireOrRenew(ctx) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.RetryPeriod):
			}
			continue
		}
		e.Log.WithField("lease", e.Name).Info("became leader")
		if err := e.leadUntilLost(ctx, lead); err != nil {
			return err
		}
	}
	e.release()
	return nil
}

func (e *Elector) leadUntilLost(ctx context.Context, lead func(context.Context) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- lead(lctx) }()
	renewed := e.now()
	t := time.NewTicker(e.RetryPeriod)
	defer t.Stop()
	for {
		select {
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("stopped while leading")
			}
			return err
		case <-t.C:
			if e.tryAcquireOrRenew(ctx) {
				renewed = e.now()
			} else if e.now().Sub(renewed) > e.RenewDeadline {
				e.Log.WithField("lease", e.Name).Warn("lost leadership")
				cancel()
				<-errc
				return nil
			}
		case <-ctx.Done():
			<-errc
			return nil
		}
	}
}

// tryAcquireOrRenew takes the lease when it is free, expired or ours.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := metav1.NewMicroTime(e.now())
	secs := max(int32(e.LeaseDuration/time.Second), 1)
	cur, ok := e.Leases.Get(metav1.NamespaceSystem, e.Name)
	if !ok {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: e.Name, Namespace: metav1.NamespaceSystem},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &e.Identity, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now},
		}
		_, err := e.Client.Create(ctx, l)
		return err == nil
	}
	l := cur.DeepCopy()
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if holder != e.Identity && holder != "" && !e.expired(l) {
		return false
	}
	if holder != e.Identity {
		l.Spec.AcquireTime = &now
		transitions := int32(0)
		if l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions
		}
		if holder != "" {
			transitions++
		}
		l.Spec.LeaseTransitions = &transitions
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &e.Identity, &secs, &now
	_, err := e.Client.Update(ctx, l)
	if err != nil && !apierrors.IsConflict(err) {
		e.Log.WithError(err).Debug("renew lease")
	}
	return err == nil
}

func (e *Elector) expired(l *coordinationv1.Lease) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return e.now().After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// release gives the lease up if this process holds it.
func (e *Elector) release() {
	cur, ok := e.Leases.Get(metav1.NamespaceSystem, e.Name)
	if !ok || cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != e.Identity {
		return
	}
	l := cur.DeepCopy()
	empty, one := "", int32(1)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &empty, &one
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.Client.Update(ctx, l); err != nil {
		e.Log.WithError(err).Debug("release lease")
	}
}
