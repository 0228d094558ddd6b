package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	sjson "sigs.k8s.io/json"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

// applyObject creates the object or updates it to the file's content. It
// returns the object's identity (namespace defaulted) and whether it
// wrote.
func (c *Controller) applyObject(ctx context.Context, rel string, o Object) (Ref, bool, error) {
	content := runtime.DeepCopyJSON(o.Content)
	k, ok := c.store.Registry().LookupKind(o.GVK())
	if !ok {
		return o.Ref(), false, errNoKind(o)
	}
	scope(content, k.Namespaced)
	o.Content = content
	ref := o.Ref()
	want, err := desired(content, rel)
	if err != nil {
		return ref, false, err
	}
	obj, err := decode(want, k)
	if err != nil {
		return ref, false, err
	}
	claim(obj, c.cfg.Identity)
	cur, err := c.store.Get(ctx, k, ref.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		_, err = c.store.Create(ctx, k, ref.Namespace, obj, rest.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return ref, err == nil, err
		}
		cur, err = c.store.Get(ctx, k, ref.Namespace, ref.Name)
	}
	if err != nil {
		return ref, false, err
	}
	if out, changed, err := merge(cur, want, k.New); err != nil || !(changed || claim(out, c.cfg.Identity)) {
		return ref, false, err
	}
	_, err = c.store.Update(ctx, k, ref.Namespace, ref.Name, func(cur runtime.Object) (runtime.Object, error) {
		out, _, err := merge(cur, want, k.New)
		if err == nil {
			claim(out, c.cfg.Identity)
		}
		return out, err
	}, rest.UpdateOptions{})
	return ref, err == nil, err
}

// decode converts an object to its Go type, refusing unknown fields as
// the API server does for kubectl (fieldValidation=Strict).
func decode(content map[string]interface{}, k *registry.Kind) (runtime.Object, error) {
	b, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	obj := k.New()
	strict, err := sjson.UnmarshalStrict(b, obj, sjson.DisallowDuplicateFields, sjson.DisallowUnknownFields)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	return obj, nil
}

// scope sets a namespaced object's namespace to "default" when the file
// gives none, and drops the namespace of a cluster-scoped one.
func scope(content map[string]interface{}, namespaced bool) {
	u := &unstructured.Unstructured{Object: content}
	switch {
	case namespaced && u.GetNamespace() == "":
		u.SetNamespace(metav1.NamespaceDefault)
	case !namespaced && u.GetNamespace() != "":
		unstructured.RemoveNestedField(content, "metadata", "namespace")
	}
}

// prune deletes the objects applied from files that are gone, or that
// their file no longer gives. Files marked with SkipSuffix, and files
// that did not parse completely, keep theirs.
func (c *Controller) prune(ctx context.Context, skip map[string]bool) {
	for _, k := range c.store.Registry().Kinds() {
		if k.Storage != nil {
			continue // stored as another kind, listed under it
		}
		objs, _ := c.store.Cache().Resource(k.GroupResource()).List(rest.LabelIndex, ManagedLabel+"=true")
		for _, obj := range objs {
			m, err := meta.Accessor(obj)
			if err != nil || m.GetDeletionTimestamp() != nil {
				continue
			}
			if !c.orphan(k, m, skip) {
				continue
			}
			c.remove(ctx, k, m, skip)
		}
	}
}

// orphan reports whether an object applied from a file is no longer
// given by it.
func (c *Controller) orphan(k *registry.Kind, m metav1.Object, skip map[string]bool) bool {
	src := m.GetAnnotations()[SourceAnnotation]
	if m.GetLabels()[ManagedLabel] != "true" || src == "" || skip[src] {
		return false
	}
	if by := m.GetAnnotations()[ServerAnnotation]; by != "" && c.cfg.Identity != "" && by != c.cfg.Identity {
		return false // another server's
	}
	f := c.files[src]
	if f == nil {
		return true
	}
	ref := Ref{Group: k.GVR.Group, Kind: k.Kind, Namespace: m.GetNamespace(), Name: m.GetName()}
	return f.complete && !f.want[ref]
}

// remove deletes an orphaned object, checking first against etcd (the
// cache may lag behind an apply that moved it to another file).
func (c *Controller) remove(ctx context.Context, k *registry.Kind, cached metav1.Object, skip map[string]bool) {
	log := c.cfg.Log.WithField("file", cached.GetAnnotations()[SourceAnnotation])
	ref := Ref{Group: k.GVR.Group, Kind: k.Kind, Namespace: cached.GetNamespace(), Name: cached.GetName()}
	cur, err := c.store.Get(ctx, k, ref.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		log.WithError(err).Warnf("get %s to delete it", ref)
		return
	}
	m, err := meta.Accessor(cur)
	if err != nil || m.GetUID() != cached.GetUID() || m.GetDeletionTimestamp() != nil || !c.orphan(k, m, skip) {
		return
	}
	uid := m.GetUID()
	_, err = c.store.Delete(ctx, k, ref.Namespace, ref.Name, &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		log.WithError(err).Warnf("delete %s", ref)
		return
	}
	log.WithField("object", ref.String()).Info("deleted object no longer in manifests")
}
