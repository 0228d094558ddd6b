package deploy

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// Labels and annotations the controller puts on what it applies.
const (
	// ManagedLabel marks every object applied from a manifest file, so
	// the controller finds them all through the cache's label index.
	ManagedLabel = "deploy.mizzen.io/managed"
	// SourceAnnotation names the file (relative to the manifests
	// directory) an object came from.
	SourceAnnotation = "deploy.mizzen.io/source"
	// AppliedAnnotation holds the object as the file last gave it: the
	// "original" of the three-way merge that updates it, as kubectl's
	// last-applied-configuration does for `kubectl apply`.
	AppliedAnnotation = "deploy.mizzen.io/applied"
	// ServerAnnotation names the server that created (or adopted) an
	// object: each server deletes only its own, so servers sharing a
	// datastore but not a manifests directory leave each other's alone.
	ServerAnnotation = "deploy.mizzen.io/server"
)

// claim marks obj as created by server id (when it names no server yet);
// it reports whether it changed obj.
func claim(obj runtime.Object, id string) bool {
	m, ok := obj.(metav1.Object)
	if !ok || id == "" || m.GetAnnotations()[ServerAnnotation] != "" {
		return false
	}
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[ServerAnnotation] = id
	m.SetAnnotations(a)
	return true
}

// desired returns the object as it should be applied: the file's content
// with the controller's label and annotations.
func desired(content map[string]interface{}, source string) (map[string]interface{}, error) {
	applied, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	out := runtime.DeepCopyJSON(content)
	md, _ := out["metadata"].(map[string]interface{})
	if md == nil {
		md = map[string]interface{}{}
		out["metadata"] = md
	}
	set := func(field, key, value string) {
		m, _ := md[field].(map[string]interface{})
		if m == nil {
			m = map[string]interface{}{}
			md[field] = m
		}
		m[key] = value
	}
	set("labels", ManagedLabel, "true")
	set("annotations", SourceAnnotation, source)
	set("annotations", AppliedAnnotation, string(applied))
	return out, nil
}

// original returns what the controller last applied to cur (with its
// label and annotations), or an empty object when it applied nothing yet:
// then the file's fields are set and nothing else is removed.
func original(cur metav1.Object) ([]byte, error) {
	last, ok := cur.GetAnnotations()[AppliedAnnotation]
	if !ok {
		return []byte("{}"), nil
	}
	var content map[string]interface{}
	if err := json.Unmarshal([]byte(last), &content); err != nil {
		return []byte("{}"), nil // not ours to trust: treat as first apply
	}
	o, err := desired(content, cur.GetAnnotations()[SourceAnnotation])
	if err != nil {
		return nil, err
	}
	return json.Marshal(untyped(o))
}

// untyped drops apiVersion and kind, which stored objects do not carry
// (and a file may change from one version of a kind to another).
func untyped(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		if k != "apiVersion" && k != "kind" {
			out[k] = v
		}
	}
	return out
}

// merge returns cur with the file's object applied by a three-way
// strategic merge (original: what was last applied; modified: want):
// fields the file sets take its values, fields it stopped setting are
// removed, and fields it never set (users' changes, defaults, allocated
// values such as a clusterIP) are kept. changed is false when cur already
// agrees with the file.
func merge(cur runtime.Object, want map[string]interface{}, newObj func() runtime.Object) (out runtime.Object, changed bool, err error) {
	m, ok := cur.(metav1.Object)
	if !ok {
		return nil, false, fmt.Errorf("%T has no metadata", cur)
	}
	orig, err := original(m)
	if err != nil {
		return nil, false, err
	}
	modified, err := json.Marshal(untyped(want))
	if err != nil {
		return nil, false, err
	}
	current, err := json.Marshal(cur)
	if err != nil {
		return nil, false, err
	}
	lookup, err := strategicpatch.NewPatchMetaFromStruct(newObj())
	if err != nil {
		return nil, false, err
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(orig, modified, current, lookup, true)
	if err != nil {
		return nil, false, fmt.Errorf("compute patch: %w", err)
	}
	if string(patch) == "{}" {
		return cur, false, nil
	}
	result, err := strategicpatch.StrategicMergePatchUsingLookupPatchMeta(current, patch, lookup)
	if err != nil {
		return nil, false, fmt.Errorf("apply patch: %w", err)
	}
	out = newObj()
	if err := json.Unmarshal(result, out); err != nil {
		return nil, false, fmt.Errorf("decode patched object: %w", err)
	}
	return out, true, nil
}
