package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one object of a manifest file, as written there.
type Object struct {
	// Doc is the 1-based document (YAML) or value (JSON) it came from.
	Doc int
	// Content is the object's JSON fields.
	Content map[string]interface{}
}

// GVK returns the object's apiVersion and kind.
func (o Object) GVK() schema.GroupVersionKind {
	return (&unstructured.Unstructured{Object: o.Content}).GroupVersionKind()
}

// Ref names the object.
func (o Object) Ref() Ref {
	u := &unstructured.Unstructured{Object: o.Content}
	return Ref{Group: u.GroupVersionKind().Group, Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Ref identifies an object across API versions.
type Ref struct {
	Group, Kind, Namespace, Name string
}

func (r Ref) String() string {
	kind := r.Kind
	if r.Group != "" {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + " " + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

// Manifest reports whether a file name is one the controller applies:
// YAML or JSON, not hidden.
func Manifest(name string) bool {
	if strings.HasPrefix(filepath.Base(name), ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Parse splits a manifest file into its objects, expanding v1 Lists. A
// document that does not parse, or is not an object with apiVersion, kind
// and metadata.name, is reported in errs; the other documents are still
// returned.
func Parse(name string, data []byte) (objs []Object, errs []error) {
	docs, err := documents(name, data)
	if err != nil {
		errs = append(errs, err)
	}
	for i, doc := range docs {
		n := i + 1
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", n, err))
			continue
		}
		var v interface{}
		if err := json.Unmarshal(js, &v); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", n, err))
			continue
		}
		if v == nil {
			continue // only comments
		}
		m, ok := v.(map[string]interface{})
		if !ok {
			errs = append(errs, fmt.Errorf("document %d: not an object", n))
			continue
		}
		items, err := expand(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", n, err))
			continue
		}
		for _, it := range items {
			if err := check(it); err != nil {
				errs = append(errs, fmt.Errorf("document %d: %w", n, err))
				continue
			}
			objs = append(objs, Object{Doc: n, Content: it})
		}
	}
	return objs, errs
}

// documents splits YAML at "---" lines; JSON files hold one or more
// concatenated values.
func documents(name string, data []byte) ([][]byte, error) {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		var docs [][]byte
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					return docs, nil
				}
				return docs, fmt.Errorf("value %d: %w", len(docs)+1, err)
			}
			docs = append(docs, raw)
		}
	}
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, doc)
	}
}

// expand returns the items of a List, or the object itself.
func expand(m map[string]interface{}) ([]map[string]interface{}, error) {
	u := &unstructured.Unstructured{Object: m}
	if !u.IsList() {
		return []map[string]interface{}{m}, nil
	}
	var out []map[string]interface{}
	for i, it := range m["items"].([]interface{}) {
		im, ok := it.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("items[%d]: not an object", i)
		}
		out = append(out, im)
	}
	return out, nil
}

func check(m map[string]interface{}) error {
	u := &unstructured.Unstructured{Object: m}
	switch {
	case u.GetAPIVersion() == "":
		return errors.New("apiVersion not set")
	case u.GetKind() == "":
		return errors.New("kind not set")
	case u.GetName() == "":
		return fmt.Errorf("%s: metadata.name not set (generateName is not supported in manifests)", u.GetKind())
	}
	if _, err := schema.ParseGroupVersion(u.GetAPIVersion()); err != nil {
		return fmt.Errorf("apiVersion %q: %w", u.GetAPIVersion(), err)
	}
	return nil
}
