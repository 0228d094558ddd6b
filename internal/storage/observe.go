package storage

import (
	"strings"
	"time"
)

// Observer is told of every etcd request the Store makes: the operation
// (get, create, update, delete, list, revision), the resource of the key
// ("pods", "deployments.apps"), how long etcd took and its error, if any
// (a failed precondition is not an error).
type Observer func(operation, resource string, elapsed time.Duration, err error)

// Option configures a Store.
type Option func(*Store)

// WithObserver makes the Store report its etcd requests to o (for the
// etcd_request_duration_seconds metric).
func WithObserver(o Observer) Option {
	return func(s *Store) { s.observe = o }
}

// observeSince reports an etcd request that started at start.
func (s *Store) observeSince(operation, key string, start time.Time, err error) {
	if s.observe != nil {
		s.observe(operation, resourceOf(key), time.Since(start), err)
	}
}

// resourceOf names the resource of a key or prefix under Prefix:
// "pods" for /registry/core/pods/..., "deployments.apps" for
// /registry/apps/deployments/...; anything else is "other".
func resourceOf(key string) string {
	parts := strings.SplitN(strings.TrimPrefix(key, Prefix), "/", 3)
	if !strings.HasPrefix(key, Prefix) || len(parts) < 2 || parts[1] == "" {
		return "other"
	}
	if parts[0] == "core" {
		return parts[1]
	}
	return parts[1] + "." + parts[0]
}
