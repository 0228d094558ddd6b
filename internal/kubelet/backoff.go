package kubelet

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// backoff spaces restarts of crashing containers and pulls of failing
// images the way the kubelet does: the first retry is immediate, then
// 10 s doubling up to 5 min; an entry not touched for twice the maximum
// starts over.
type backoff struct {
	clock   clock.Clock
	initial time.Duration
	max     time.Duration

	mu      sync.Mutex // guards entries
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// The kubelet's container restart back-off.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 300 * time.Second
)

func newBackoff(c clock.Clock, initial, max time.Duration) *backoff {
	return &backoff{clock: c, initial: initial, max: max, entries: map[string]*backoffEntry{}}
}

func (b *backoff) expired(e *backoffEntry, eventTime time.Time) bool {
	return eventTime.Sub(e.lastUpdate) > 2*b.max
}

// waitFor returns how long key must still wait after the failure at
// eventTime (0 when it may retry now).
func (b *backoff) waitFor(key string, eventTime time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		return 0
	}
	if d := e.delay - b.clock.Since(eventTime); d > 0 {
		return d
	}
	return 0
}

// next records a retry of key after the failure at eventTime, doubling
// its delay.
func (b *backoff) next(key string, eventTime time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay = min(2*e.delay, b.max)
	}
	e.lastUpdate = b.clock.Now()
}

// current returns key's delay, for messages ("back-off 20s restarting").
func (b *backoff) current(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return b.initial
}

// forget drops every entry whose key starts with prefix (a pod's UID).
func (b *backoff) forget(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}
