package apiclient

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Back-off between failed lists and watches.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// Handler receives an informer's changes: old is the zero T (nil) for an
// add, new is nil for a delete (old is then the object's last state).
// Handlers are called from the informer's Run goroutine, one at a time, in
// the order of the changes, after the informer's store has the change. The
// objects are shared with the store: do not modify them.
type Handler[T runtime.Object] func(old, new T)

// Informer keeps an in-memory copy of the objects of one kind (T's, e.g.
// *corev1.Pod) in a namespace matching label and field selectors, by list
// and watch, and calls its handler on every change. Objects returned by
// List and Get are shared: callers must not modify them.
type Informer[T runtime.Object] struct {
	c         *Client
	namespace string
	opts      metav1.ListOptions
	h         Handler[T]
	log       *logrus.Entry
	// minBackoff and maxBackoff bound the wait between failed attempts.
	minBackoff, maxBackoff time.Duration

	mu    sync.RWMutex
	items map[string]T // by key, guarded by mu
	// rv is the last resourceVersion seen; only Run uses it.
	rv string

	syncOnce sync.Once
	synced   chan struct{} // closed by Run once the first list is handled
}

// NewInformer returns an informer of the objects of T's kind in namespace
// ("" for all) matching opts' label and field selectors, calling h (which
// may be nil) on changes. opts.TimeoutSeconds, when set, bounds each watch
// request; its other watch-related fields are managed by the informer.
func NewInformer[T runtime.Object](c *Client, namespace string, opts metav1.ListOptions, h Handler[T], log *logrus.Entry) *Informer[T] {
	return &Informer[T]{
		c: c, namespace: namespace, h: h, log: log,
		opts: metav1.ListOptions{
			LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector, TimeoutSeconds: opts.TimeoutSeconds,
		},
		minBackoff: minBackoff, maxBackoff: maxBackoff,
		items:  map[string]T{},
		synced: make(chan struct{}),
	}
}

// HasSynced reports whether the first list has been received and handled.
func (i *Informer[T]) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// WaitSynced waits until HasSynced or ctx is done (returning ctx's error).
func (i *Informer[T]) WaitSynced(ctx context.Context) error {
	select {
	case <-i.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns the objects held, sorted by namespace and name.
func (i *Informer[T]) List() []T {
	i.mu.RLock()
	keys := make([]string, 0, len(i.items))
	for k := range i.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, len(keys))
	for n, k := range keys {
		out[n] = i.items[k]
	}
	i.mu.RUnlock()
	return out
}

// Get returns the object namespace/name ("" namespace for cluster-scoped
// kinds).
func (i *Informer[T]) Get(namespace, name string) (T, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	t, ok := i.items[key(namespace, name)]
	return t, ok
}

func key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func keyOf(obj runtime.Object) (string, string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", "", err
	}
	return key(m.GetNamespace(), m.GetName()), m.GetResourceVersion(), nil
}

// Run lists and watches until ctx is done, then returns nil. Errors are
// retried with back-off (1 s doubling to 30 s); a watch resumes from the
// last resourceVersion seen (bookmarks keep it fresh), and a 410 Gone
// (resourceVersion too old) relists, reporting what changed meanwhile as
// adds, updates and deletes. Run may be called again after it returned;
// it resumes where it stopped. It must not run twice at once.
func (i *Informer[T]) Run(ctx context.Context) error {
	example, err := i.example()
	if err != nil {
		return err
	}
	backoff := i.minBackoff
	wait := func(err error, what string) bool {
		i.log.WithError(err).WithField("retry", backoff).Warnf("%s failed", what)
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, i.maxBackoff)
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		if i.rv == "" {
			if err := i.list(ctx, example); err != nil {
				if ctx.Err() != nil {
					break
				}
				if !wait(err, "list") {
					break
				}
				continue
			}
			backoff = i.minBackoff
		}
		start := time.Now()
		progressed, err := i.watch(ctx, example)
		switch {
		case ctx.Err() != nil:
		case isGone(err):
			i.log.WithError(err).Debug("watch expired, relisting")
			i.rv = ""
		case errors.As(err, new(errorEvent)):
			// The server ended the stream with an error (or sent an event
			// that does not decode): events may be lost, so list again.
			i.rv = ""
			if !wait(err, "watch") {
				return nil
			}
		case err != nil:
			if !wait(err, "watch") {
				return nil
			}
		case progressed || time.Since(start) >= i.minBackoff:
			backoff = i.minBackoff
		default:
			// The stream ended at once with nothing in it: do not spin.
			if !wait(fmt.Errorf("watch ended without events"), "watch") {
				return nil
			}
		}
	}
	return nil
}

// example returns a new, empty object of type T.
func (i *Informer[T]) example() (T, error) {
	var zero T
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return zero, fmt.Errorf("informer: type %v is not a pointer to a struct", t)
	}
	obj := reflect.New(t.Elem()).Interface().(T)
	if _, err := i.c.kindOf(obj); err != nil {
		return zero, fmt.Errorf("informer: %w", err)
	}
	return obj, nil
}

// list replaces the store with a fresh list, reporting the differences.
func (i *Informer[T]) list(ctx context.Context, example T) error {
	k, err := i.c.kindOf(example)
	if err != nil {
		return err
	}
	list := k.NewList()
	if err := i.c.List(ctx, list, i.namespace, i.opts); err != nil {
		return err
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", k.GVR.Resource, err)
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", k.GVR.Resource, err)
	}
	fresh := make(map[string]T, len(objs))
	var order []string
	for _, o := range objs {
		t, ok := o.(T)
		if !ok {
			return fmt.Errorf("list %s: item of type %T", k.GVR.Resource, o)
		}
		key, _, err := keyOf(t)
		if err != nil {
			return err
		}
		fresh[key] = t
		order = append(order, key)
	}
	i.mu.Lock()
	old := i.items
	i.items = fresh
	i.mu.Unlock()
	i.rv = lm.GetResourceVersion()
	i.log.WithFields(logrus.Fields{"resource": k.GVR.Resource, "items": len(fresh), "resourceVersion": i.rv}).Debug("listed")
	var zero T
	for _, key := range order {
		n := fresh[key]
		o, had := old[key]
		switch {
		case !had:
			i.handle(zero, n)
		case resourceVersion(o) != resourceVersion(n):
			i.handle(o, n)
		}
	}
	var gone []string
	for key := range old {
		if _, ok := fresh[key]; !ok {
			gone = append(gone, key)
		}
	}
	sort.Strings(gone)
	for _, key := range gone {
		i.handle(old[key], zero)
	}
	i.syncOnce.Do(func() { close(i.synced) })
	return nil
}

func resourceVersion(obj runtime.Object) string {
	_, rv, _ := keyOf(obj)
	return rv
}

func (i *Informer[T]) handle(old, new T) {
	if i.h != nil {
		i.h(old, new)
	}
}

// watch watches from i.rv and applies events until the stream ends. It
// reports whether any event arrived, and the error that ended the watch
// (an ERROR event's as a StatusError).
func (i *Informer[T]) watch(ctx context.Context, example T) (progressed bool, err error) {
	opts := i.opts
	opts.ResourceVersion = i.rv
	opts.AllowWatchBookmarks = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := i.c.Watch(ctx, example, i.namespace, opts)
	if err != nil {
		return false, err
	}
	var zero T
	for ev := range ch {
		progressed = true
		if ev.Type == watch.Error {
			if st, ok := ev.Object.(*metav1.Status); ok {
				return progressed, errorEvent{apierrors.FromObject(st)}
			}
			return progressed, errorEvent{fmt.Errorf("watch error event %T", ev.Object)}
		}
		t, ok := ev.Object.(T)
		if !ok {
			return progressed, fmt.Errorf("watch event object of type %T", ev.Object)
		}
		key, rv, err := keyOf(t)
		if err != nil {
			return progressed, err
		}
		if rv != "" {
			i.rv = rv
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			i.mu.Lock()
			old, had := i.items[key]
			i.items[key] = t
			i.mu.Unlock()
			if had {
				i.handle(old, t)
			} else {
				i.handle(zero, t)
			}
		case watch.Deleted:
			i.mu.Lock()
			_, had := i.items[key]
			delete(i.items, key)
			i.mu.Unlock()
			if had {
				i.handle(t, zero)
			}
		}
	}
	return progressed, nil
}

// errorEvent is the error of a watch ERROR event.
type errorEvent struct{ err error }

func (e errorEvent) Error() string { return e.err.Error() }
func (e errorEvent) Unwrap() error { return e.err }

// isGone reports the error of a watch whose resourceVersion is too old
// (410 Gone, reason Expired or Gone).
func isGone(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}
