package storage

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WriteOption modifies a Create or Update.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ttl time.Duration
}

// WithTTL makes etcd delete the key about ttl after this write (at most a
// minute later: leases are shared by writes within a minute, as
// kube-apiserver shares them, so that events cost one lease per minute).
func WithTTL(ttl time.Duration) WriteOption {
	return func(o *writeOptions) { o.ttl = ttl }
}

// leaseReuse is how long a granted lease serves new writes.
const leaseReuse = time.Minute

// leases hands out shared etcd leases.
type leases struct {
	c *clientv3.Client
	// mu guards the fields below: the current lease per TTL.
	mu      sync.Mutex
	current map[time.Duration]grant
}

type grant struct {
	id      clientv3.LeaseID
	granted time.Time
}

// get returns a lease that outlives now+ttl, granting one when needed.
func (l *leases) get(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.current[ttl]; ok && time.Since(g.granted) < leaseReuse {
		return g.id, nil
	}
	resp, err := l.c.Grant(ctx, int64((ttl+leaseReuse)/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	if l.current == nil {
		l.current = map[time.Duration]grant{}
	}
	l.current[ttl] = grant{id: resp.ID, granted: time.Now()}
	return resp.ID, nil
}

// putOptions returns the etcd options of a write.
func (s *Store) putOptions(ctx context.Context, opts []WriteOption) ([]clientv3.OpOption, error) {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	if o.ttl <= 0 {
		return nil, nil
	}
	id, err := s.leases.get(ctx, o.ttl)
	if err != nil {
		return nil, err
	}
	return []clientv3.OpOption{clientv3.WithLease(id)}, nil
}
