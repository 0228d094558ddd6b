package deploy

import (
	"strings"
	"testing"
)

func TestParseSplitsDocumentsAndReportsBadOnes(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		data     string
		want     []string // Ref strings, in order
		wantErrs []string // substrings, in order
	}{
		{name: "multi-document YAML", file: "a.yaml", data: `
# comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: one, namespace: x}
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: two}
`, want: []string{"ConfigMap x/one", "Deployment.apps two"}},
		{name: "bad YAML in the middle keeps the rest", file: "b.yml", data: `
apiVersion: v1
kind: ConfigMap
metadata: {name: one}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: [broken
---
apiVersion: v1
kind: Secret
metadata: {name: three}
`, want: []string{"ConfigMap one", "Secret three"}, wantErrs: []string{"document 2"}},
		{name: "missing fields", file: "c.yaml", data: `
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
metadata: {name: b}
---
apiVersion: v1
kind: ConfigMap
metadata: {generateName: c-}
---
- just a list
`, wantErrs: []string{"document 1: apiVersion not set", "document 2: kind not set", "document 3: ConfigMap: metadata.name not set", "document 4: not an object"}},
		{name: "v1 List expanded", file: "d.yaml", data: `
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
`, want: []string{"ConfigMap a", "ConfigMap b"}},
		{name: "JSON values", file: "e.json", data: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"n"}}`,
			want: []string{"Namespace n", "ConfigMap n/c"}},
		{name: "bad JSON after a good value", file: "f.json", data: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}} {"apiVersion":`,
			want: []string{"Namespace n"}, wantErrs: []string{"value 2"}},
		{name: "empty", file: "g.yaml", data: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := Parse(tt.file, []byte(tt.data))
			var got []string
			for _, o := range objs {
				got = append(got, o.Ref().String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("objects %q, want %q", got, tt.want)
			}
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %q", errs, tt.wantErrs)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.wantErrs[i]) {
					t.Errorf("error %d: %v, want it to contain %q", i, err, tt.wantErrs[i])
				}
			}
		})
	}
}

func TestManifestNames(t *testing.T) {
	for name, want := range map[string]bool{
		"a.yaml": true, "b.YML": true, "c.json": true, "sub/d.yaml": true,
		".hidden.yaml": false, "e.yaml.skip": false, "f.txt": false, "g": false,
	} {
		if got := Manifest(name); got != want {
			t.Errorf("Manifest(%q) = %v, want %v", name, got, want)
		}
	}
}
