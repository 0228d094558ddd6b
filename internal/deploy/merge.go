package deploy

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

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
	// last-applied-configuration does for `kubectl apply` (gzipped and
	// base64-encoded when large, see encodeApplied).
	AppliedAnnotation = "deploy.mizzen.io/applied"
	// ServerAnnotation names the server that last applied an object from
	// its files: each server deletes only its own, so servers sharing a
	// datastore but not a manifests directory leave each other's alone.
	ServerAnnotation = "deploy.mizzen.io/server"
)

// claim marks obj as applied by server id: an object this server's files
// give is its own, even when another identity applied it before (this
// server under an older host name, or restored onto a new host). It
// reports whether it changed obj.
func claim(obj runtime.Object, id string) bool {
	m, ok := obj.(metav1.Object)
	if !ok || id == "" || m.GetAnnotations()[ServerAnnotation] == id {
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
	if a, ok := encodeApplied(applied); ok {
		set("annotations", AppliedAnnotation, a)
	}
	return out, nil
}

// maxApplied bounds the applied annotation, leaving room for the object's
// own annotations within the API's 256 KiB for all of them.
const maxApplied = 192 << 10

// encodeApplied returns the value of AppliedAnnotation for an object's
// JSON: the JSON itself when small, else gzipped and base64-encoded (as
// k3s keeps its applied annotation), so that objects larger than the
// annotation limit still apply. ok is false when even that is too large:
// the object then goes without it (and updates cannot remove fields the
// file stops setting).
func encodeApplied(js []byte) (string, bool) {
	if len(js) < 1024 {
		return string(js), true
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(js)
	w.Close()
	out := base64.StdEncoding.EncodeToString(buf.Bytes())
	return out, len(out) <= maxApplied
}

// decodeApplied reverses encodeApplied.
func decodeApplied(a string) ([]byte, error) {
	if strings.HasPrefix(a, "{") {
		return []byte(a), nil
	}
	gz, err := base64.StdEncoding.DecodeString(a)
	if err != nil {
		return nil, err
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 8<<20))
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
	js, err := decodeApplied(last)
	if err == nil {
		err = json.Unmarshal(js, &content)
	}
	if err != nil {
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
	var lookup strategicpatch.LookupPatchMeta
	lookup, err = strategicpatch.NewPatchMetaFromStruct(newObj())
	if err != nil {
		return nil, false, err
	}
	if portsNamed(orig, modified, current) {
		lookup = portsByName{lookup}
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

// portsByName merges lists of ports by name rather than by number (the
// strategic merge key of Service and container ports), so that ports
// sharing a number, such as DNS's 53/UDP and 53/TCP, stay apart instead
// of being merged into one (kubernetes#39188, which kubectl apply has).
// It is used only when every port is named.
type portsByName struct {
	strategicpatch.LookupPatchMeta
}

func (l portsByName) LookupPatchMetadataForStruct(key string) (strategicpatch.LookupPatchMeta, strategicpatch.PatchMeta, error) {
	sub, pm, err := l.LookupPatchMeta.LookupPatchMetadataForStruct(key)
	if sub != nil {
		sub = portsByName{sub}
	}
	return sub, pm, err
}

func (l portsByName) LookupPatchMetadataForSlice(key string) (strategicpatch.LookupPatchMeta, strategicpatch.PatchMeta, error) {
	sub, pm, err := l.LookupPatchMeta.LookupPatchMetadataForSlice(key)
	if err == nil && key == "ports" {
		if k := pm.GetPatchMergeKey(); k == "port" || k == "containerPort" {
			pm.SetPatchMergeKey("name")
		}
	}
	if sub != nil {
		sub = portsByName{sub}
	}
	return sub, pm, err
}

// portsNamed reports whether every item of every "ports" list in the
// JSON documents has a name, unique within its list.
func portsNamed(docs ...[]byte) bool {
	var walk func(v interface{}) bool
	walk = func(v interface{}) bool {
		switch v := v.(type) {
		case map[string]interface{}:
			for k, sub := range v {
				if items, ok := sub.([]interface{}); ok && k == "ports" {
					names := map[string]bool{}
					for _, it := range items {
						m, _ := it.(map[string]interface{})
						name, _ := m["name"].(string)
						if name == "" || names[name] {
							return false
						}
						names[name] = true
					}
				}
				if !walk(sub) {
					return false
				}
			}
		case []interface{}:
			for _, sub := range v {
				if !walk(sub) {
					return false
				}
			}
		}
		return true
	}
	for _, d := range docs {
		var v interface{}
		if json.Unmarshal(d, &v) != nil || !walk(v) {
			return false
		}
	}
	return true
}
