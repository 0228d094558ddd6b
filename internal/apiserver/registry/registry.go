// Package registry is the table of kinds the API server serves. Each entry
// names a resource, its k8s.io/api Go types, its scope, subresources,
// strategy (defaulting and validation) and table columns; the handlers in
// package apiserver are generic over it.
package registry

import (
	"context"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Kind describes one served resource.
type Kind struct {
	// GVR is the group, version and plural resource name.
	GVR schema.GroupVersionResource
	// Kind and ListKind are the names of the Go types (Pod, PodList).
	Kind     string
	ListKind string
	// Singular is the lowercase singular name (pod).
	Singular   string
	ShortNames []string
	Categories []string
	Namespaced bool
	// New and NewList return empty objects of the kind and of its list.
	New     func() runtime.Object
	NewList func() runtime.Object
	// Status is true when the kind has a /status subresource: updates of
	// the main resource keep the stored status, updates of /status keep
	// everything else.
	Status bool
	// Scale is true when the kind has a /scale subresource (spec.replicas).
	Scale bool
	// Subresources lists further subresource names served (binding, log).
	Subresources []string
	// Strategy defaults and validates objects of the kind.
	Strategy Strategy
	// Table converts objects to rows of `kubectl get`.
	Table Table
	// Fields returns the field-selector fields of an object; nil means
	// only metadata.name and metadata.namespace.
	Fields func(obj runtime.Object) fields.Set
	// Storage, when set, is the kind whose objects this kind presents in
	// another form: events.k8s.io/v1 Events are core/v1 Events, stored and
	// cached once. ToStorage and FromStorage convert between the two.
	Storage     *Kind
	ToStorage   func(obj runtime.Object) runtime.Object
	FromStorage func(obj runtime.Object) runtime.Object
	// TTL, when set, makes etcd remove an object that long after its last
	// write (Events, like kube-apiserver's --event-ttl).
	TTL time.Duration
}

// Stored returns the kind whose storage holds this kind's objects.
func (k *Kind) Stored() *Kind {
	if k.Storage != nil {
		return k.Storage
	}
	return k
}

// Present converts a stored object to this kind's form (a no-op for
// kinds that are stored as themselves).
func (k *Kind) Present(obj runtime.Object) runtime.Object {
	if k.Storage == nil || obj == nil {
		return obj
	}
	return k.FromStorage(obj)
}

// GroupVersionKind returns the kind's GVK.
func (k *Kind) GroupVersionKind() schema.GroupVersionKind {
	return k.GVR.GroupVersion().WithKind(k.Kind)
}

// GroupResource returns the kind's group and resource.
func (k *Kind) GroupResource() schema.GroupResource { return k.GVR.GroupResource() }

// Verbs are the verbs every kind supports.
var Verbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// Strategy holds the per-kind behaviour that Kubernetes keeps in its
// registry strategies. Any field may be nil.
type Strategy struct {
	// Default fills in defaults, as the API server's defaulting does for the
	// versioned type. It is called on create and on update.
	Default func(obj runtime.Object)
	// PrepareForCreate clears or initialises fields the client may not set
	// on create (for example status), after Default.
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate carries over from old what an update may leave out
	// (a Service's allocated clusterIP and node ports), before Default.
	PrepareForUpdate func(obj, old runtime.Object)
	// Validate validates a new object (metadata included).
	Validate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate validates an update of old to obj, including
	// immutable fields. Validate is not also called on update.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// ValidateStatusUpdate validates an update through /status.
	ValidateStatusUpdate func(obj, old runtime.Object) field.ErrorList
}

// Table produces the columns `kubectl get` prints for a kind.
type Table struct {
	// Columns are the column definitions; the first is Name.
	Columns []metav1.TableColumnDefinition
	// Row returns the cells of one object, in the order of Columns.
	Row func(obj runtime.Object) []interface{}
}

// Admission is an optional hook run on creates and updates after
// defaulting and validation; it may mutate the object (allocate a
// ClusterIP) or refuse it. What it sets aside is held by the returned
// Reservation until the write is known to have happened or not.
type Admission interface {
	Admit(ctx context.Context, op Operation, kind *Kind, obj, old runtime.Object) (Reservation, error)
	// Release frees what a deleted object held.
	Release(kind *Kind, obj runtime.Object)
}

// Reservation is what one admitted write set aside.
type Reservation interface {
	// Commit is called once the write is stored.
	Commit()
	// Abort is called when it is not: an error, a dry run, a retry.
	Abort()
}

// Operation is the kind of write an admission hook sees.
type Operation string

// The operations.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
)

// Registry is an immutable set of kinds with lookups.
type Registry struct {
	kinds []*Kind
	byGVR map[schema.GroupVersionResource]*Kind
	byGVK map[schema.GroupVersionKind]*Kind
}

// New builds a registry from kinds.
func New(kinds ...*Kind) *Registry {
	r := &Registry{
		byGVR: map[schema.GroupVersionResource]*Kind{},
		byGVK: map[schema.GroupVersionKind]*Kind{},
	}
	for _, k := range kinds {
		r.kinds = append(r.kinds, k)
		r.byGVR[k.GVR] = k
		r.byGVK[k.GroupVersionKind()] = k
	}
	return r
}

// Kinds returns all kinds in registration order.
func (r *Registry) Kinds() []*Kind { return r.kinds }

// Lookup returns the kind served at gvr.
func (r *Registry) Lookup(gvr schema.GroupVersionResource) (*Kind, bool) {
	k, ok := r.byGVR[gvr]
	return k, ok
}

// LookupKind returns the kind with GVK gvk.
func (r *Registry) LookupKind(gvk schema.GroupVersionKind) (*Kind, bool) {
	k, ok := r.byGVK[gvk]
	return k, ok
}

// GroupVersions returns the served group versions, the core group first.
func (r *Registry) GroupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	for _, k := range r.kinds {
		gv := k.GVR.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Group == "") != (out[j].Group == "") {
			return out[i].Group == ""
		}
		return false
	})
	return out
}

// InGroupVersion returns the kinds served in gv.
func (r *Registry) InGroupVersion(gv schema.GroupVersion) []*Kind {
	var out []*Kind
	for _, k := range r.kinds {
		if k.GVR.GroupVersion() == gv {
			out = append(out, k)
		}
	}
	return out
}
