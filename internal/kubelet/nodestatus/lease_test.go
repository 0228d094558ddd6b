package nodestatus

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func checkLease(t *testing.T, l *coordinationv1.Lease, renew time.Time) {
	t.Helper()
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "n1" {
		t.Errorf("holderIdentity = %v, want n1", l.Spec.HolderIdentity)
	}
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("leaseDurationSeconds = %v, want 40", l.Spec.LeaseDurationSeconds)
	}
	if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(renew) {
		t.Errorf("renewTime = %v, want %v", l.Spec.RenewTime, renew)
	}
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: "uid-n1"}}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0] != want[0] {
		t.Errorf("ownerReferences = %+v, want %+v", l.OwnerReferences, want)
	}
}

func TestLeaseCreatedThenRenewed(t *testing.T) {
	h := newHarness(t, nil)
	h.register(t)

	h.agent.renewLease(t.Context())
	if n := len(h.client.callsOf("Create", "Lease")); n != 1 {
		t.Fatalf("lease creates = %d, want 1", n)
	}
	l := h.client.lease(t)
	if l.Namespace != "kube-node-lease" {
		t.Errorf("lease namespace = %q", l.Namespace)
	}
	checkLease(t, l, t0)

	for i := 1; i <= 3; i++ {
		h.clock.Step(10 * time.Second)
		h.agent.renewLease(t.Context())
		checkLease(t, h.client.lease(t), t0.Add(time.Duration(i)*10*time.Second))
	}
	if n := len(h.client.callsOf("Update", "Lease")); n != 3 {
		t.Errorf("lease updates = %d, want 3", n)
	}
	// The cached lease is updated; it is read only once, before creating it.
	if n := len(h.client.callsOf("Get", "Lease")); n != 1 {
		t.Errorf("lease reads = %d, want 1", n)
	}
}

func TestLeaseRereadAfterConflict(t *testing.T) {
	h := newHarness(t, nil)
	h.register(t)
	h.agent.renewLease(t.Context())

	// Another writer (say, a previous instance of this agent) moved it on,
	// dropping the owner reference.
	l := h.client.lease(t)
	l.OwnerReferences = nil
	h.client.put(l)

	h.clock.Step(10 * time.Second)
	err := h.agent.tryRenewLease(t.Context())
	if !apierrors.IsConflict(err) {
		t.Fatalf("first renewal = %v, want a conflict", err)
	}
	if err := h.agent.tryRenewLease(t.Context()); err != nil {
		t.Fatalf("renewal after the conflict: %v", err)
	}
	if n := len(h.client.callsOf("Get", "Lease")); n != 2 {
		t.Errorf("lease reads = %d, want 2 (re-read after the conflict)", n)
	}
	checkLease(t, h.client.lease(t), t0.Add(10*time.Second))
}

func TestLeaseRetriesWithBackoff(t *testing.T) {
	tests := []struct {
		failures  int
		wantDelay time.Duration
	}{
		{0, 0},
		{1, 200 * time.Millisecond},
		{4, (200 + 400 + 800 + 1600) * time.Millisecond},
		// 200 ms doubling, capped at 7 s.
		{7, (200 + 400 + 800 + 1600 + 3200 + 6400 + 7000) * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := startRun(t, nil)
				for range tt.failures {
					r.client.failNext("Create", "Lease", apierrors.NewInternalError(context.DeadlineExceeded))
				}
				r.start(t)
				<-r.agent.Registered()
				registered := time.Now()
				time.Sleep(tt.wantDelay)
				synctest.Wait()
				if n := len(r.client.callsOf("Create", "Lease")); n != tt.failures+1 {
					t.Fatalf("lease creates after %v = %d, want %d", tt.wantDelay, n, tt.failures+1)
				}
				l := r.client.lease(t)
				if got := l.Spec.RenewTime.Sub(registered); got != tt.wantDelay {
					t.Errorf("lease created %v after registration, want %v", got, tt.wantDelay)
				}
				// The next renewal is a full interval after the success.
				time.Sleep(10*time.Second - time.Nanosecond)
				synctest.Wait()
				if n := len(r.client.callsOf("Update", "Lease")); n != 0 {
					t.Errorf("renewed %d times before the interval passed", n)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				if n := len(r.client.callsOf("Update", "Lease")); n != 1 {
					t.Errorf("renewals after the interval = %d, want 1", n)
				}
				r.stop(t)
			})
		})
	}
}
