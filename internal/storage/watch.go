package storage

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var rpcCompacted = rpctypes.ErrCompacted

// EventType says what happened to a key.
type EventType int

// The event types.
const (
	// Put is a create or an update (Prev is empty on create).
	Put EventType = iota
	// Delete removes the key; Prev holds the last stored object.
	Delete
	// Progress carries no change: the watch has seen every revision up to
	// Revision.
	Progress
	// Error ends the stream; Err says why (ErrCompacted for 410 Gone).
	Error
)

// Event is one change seen by a watch.
type Event struct {
	Type     EventType
	KV       KV
	Prev     KV
	Revision int64
	Err      error
}

// Watch streams changes under prefix from revision rev (inclusive; 0 means
// from now). The channel closes when ctx is done or after an Error event.
func (s *Store) Watch(ctx context.Context, prefix string, rev int64) <-chan Event {
	out := make(chan Event, 100)
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithProgressNotify()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	wctx := clientv3.WithRequireLeader(ctx)
	wc := s.c.Watch(wctx, prefix, opts...)
	go func() {
		defer close(out)
		send := func(e Event) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range wc {
			if resp.CompactRevision != 0 {
				send(Event{Type: Error, Err: ErrCompacted, Revision: resp.CompactRevision})
				return
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					err = ErrCompacted
				}
				send(Event{Type: Error, Err: err})
				return
			}
			if resp.IsProgressNotify() {
				if !send(Event{Type: Progress, Revision: resp.Header.Revision}) {
					return
				}
				continue
			}
			for _, ev := range resp.Events {
				e := Event{KV: KV{Key: string(ev.Kv.Key), Value: ev.Kv.Value, Revision: ev.Kv.ModRevision}, Revision: ev.Kv.ModRevision}
				if ev.PrevKv != nil {
					e.Prev = KV{Key: string(ev.PrevKv.Key), Value: ev.PrevKv.Value, Revision: ev.PrevKv.ModRevision}
				}
				if ev.Type == clientv3.EventTypeDelete {
					e.Type = Delete
				}
				if !send(e) {
					return
				}
			}
		}
		if ctx.Err() == nil {
			send(Event{Type: Error, Err: errors.New("etcd watch closed")})
		}
	}()
	return out
}

// RequestProgress asks etcd to send a Progress event on the watches opened
// with ctx's watch stream, so a consistent read learns that a watch is
// current.
func (s *Store) RequestProgress(ctx context.Context) error {
	return s.c.RequestProgress(clientv3.WithRequireLeader(ctx))
}
