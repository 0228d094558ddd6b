// Package rest implements the verbs of every registered kind over etcd
// storage and the shared cache: the one write path that HTTP handlers and
// in-process controllers share (defaulting, validation, admission,
// optimistic concurrency).
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// Store serves the verbs of the registered kinds.
type Store struct {
	reg       *registry.Registry
	st        *storage.Store
	cache     *cache.Cache
	admission []registry.Admission
	now       func() time.Time
}

// New returns a Store. Admission hooks run in order on every write.
func New(reg *registry.Registry, st *storage.Store, c *cache.Cache, admission ...registry.Admission) *Store {
	return &Store{reg: reg, st: st, cache: c, admission: admission, now: time.Now}
}

// Registry returns the registry the store serves.
func (s *Store) Registry() *registry.Registry { return s.reg }

// Cache returns the shared cache.
func (s *Store) Cache() *cache.Cache { return s.cache }

// Storage returns the underlying storage.
func (s *Store) Storage() *storage.Store { return s.st }

// CacheSpecs returns the cache specs of every registered kind.
func CacheSpecs(reg *registry.Registry) []cache.Spec {
	var specs []cache.Spec
	for _, k := range reg.Kinds() {
		if k.Storage != nil {
			continue // cached as the kind it is stored as
		}
		specs = append(specs, cache.Spec{Resource: k.GroupResource(), Decode: Decoder(k), Indexes: Indexes(k)})
	}
	return specs
}

// Indexes returns the cache indexes of a kind besides "namespace": labels,
// and the IndexedFields it has.
func Indexes(k *registry.Kind) map[string]cache.IndexFunc {
	idx := map[string]cache.IndexFunc{LabelIndex: labelIndex}
	if k.Fields == nil {
		return idx
	}
	var names []string
	for _, f := range IndexedFields {
		if _, ok := k.Fields(k.New())[f]; ok {
			names = append(names, f)
		}
	}
	if len(names) > 0 {
		idx[FieldIndex] = func(obj runtime.Object) []string {
			set := k.Fields(obj)
			out := make([]string, len(names))
			for i, f := range names {
				out[i] = f + "=" + set[f]
			}
			return out
		}
	}
	return idx
}

// LabelIndex indexes objects by each of their "key=value" labels.
const LabelIndex = "labels"

// FieldIndex indexes objects by "field=value" for each of IndexedFields
// the kind has.
const FieldIndex = "fields"

// IndexedFields are the selectable fields the cache indexes: those that
// kubelets, controllers and kubectl describe select on.
var IndexedFields = []string{"spec.nodeName", "status.phase", "involvedObject.name", "involvedObject.uid"}

func labelIndex(obj runtime.Object) []string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(m.GetLabels()))
	for k, v := range m.GetLabels() {
		out = append(out, k+"="+v)
	}
	return out
}

// Decoder returns the decoder of a kind's stored objects: JSON into its Go
// type (converted from the storage kind's for a kind stored as another),
// with resourceVersion from the revision.
func Decoder(k *registry.Kind) cache.Decoder {
	if k.Storage != nil {
		stored := Decoder(k.Storage)
		return func(kv storage.KV) (runtime.Object, error) {
			obj, err := stored(kv)
			if err != nil {
				return nil, err
			}
			return k.FromStorage(obj), nil
		}
	}
	gvk := k.GroupVersionKind()
	return func(kv storage.KV) (runtime.Object, error) {
		obj := k.New()
		if err := json.Unmarshal(kv.Value, obj); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, err
		}
		m.SetResourceVersion(strconv.FormatInt(kv.Revision, 10))
		return obj, nil
	}
}

// encode returns the stored form of obj: JSON with apiVersion and kind, no
// resourceVersion (the revision is the resourceVersion).
func encode(k *registry.Kind, obj runtime.Object) ([]byte, error) {
	if k.Storage != nil {
		obj, k = k.ToStorage(obj), k.Storage
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	data, err := json.Marshal(obj)
	m.SetResourceVersion(rv)
	return data, err
}

func (s *Store) key(k *registry.Kind, namespace, name string) string {
	if !k.Namespaced {
		namespace = ""
	}
	st := k.Stored()
	return storage.Key(st.GVR.Group, st.GVR.Resource, namespace, name)
}

// Resource returns the cache holding k's objects (in their stored form:
// convert with k.Present).
func (s *Store) Resource(k *registry.Kind) *cache.Resource {
	return s.cache.Resource(k.Stored().GroupResource())
}

// writeOptions are the storage options of a write of k.
func writeOptions(k *registry.Kind) []storage.WriteOption {
	if ttl := k.Stored().TTL; ttl > 0 {
		return []storage.WriteOption{storage.WithTTL(ttl)}
	}
	return nil
}

// Get returns the current object from etcd.
func (s *Store) Get(ctx context.Context, k *registry.Kind, namespace, name string) (runtime.Object, error) {
	kv, err := s.st.Get(ctx, s.key(k, namespace, name))
	if err != nil {
		return nil, s.storageError(k, name, err)
	}
	return Decoder(k)(kv)
}

// storageError turns a storage error into an API status.
func (s *Store) storageError(k *registry.Kind, name string, err error) error {
	gr := k.GroupResource()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return conflict(gr, name)
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired("too old resource version")
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return err
	}
	return apierrors.NewInternalError(err)
}

func conflict(gr schema.GroupResource, name string) error {
	return apierrors.NewConflict(gr, name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// accessor returns obj's metadata; every registered type has it.
func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("rest: %T has no metadata: %v", obj, err))
	}
	return m
}

func revision(m metav1.Object) int64 {
	n, _ := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
	return n
}
