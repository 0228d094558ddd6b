package rest

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// reservations are what the admission hooks set aside for one write.
type reservations []registry.Reservation

func (rs reservations) commit() {
	for _, r := range rs {
		r.Commit()
	}
}

func (rs reservations) abort() {
	for _, r := range rs {
		r.Abort()
	}
}

// admit runs the admission hooks; on a refusal it aborts what earlier
// hooks reserved.
func (s *Store) admit(ctx context.Context, op registry.Operation, k *registry.Kind, obj, old runtime.Object) (reservations, error) {
	var rs reservations
	for _, a := range s.admission {
		r, err := a.Admit(ctx, op, k, obj, old)
		if err != nil {
			rs.abort()
			return nil, err
		}
		if r != nil {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// release tells the admission hooks that obj is gone.
func (s *Store) release(k *registry.Kind, obj runtime.Object) {
	for _, a := range s.admission {
		a.Release(k, obj)
	}
}
