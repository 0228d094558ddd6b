package openapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Manifest describes the generated documents; gen writes it to
// docs/manifest.json next to them.
type Manifest struct {
	// APIModule is the version of k8s.io/api the schemas were generated
	// from.
	APIModule string `json:"apiModule"`
	// Fingerprint is the Fingerprint of the registry the documents
	// describe.
	Fingerprint string `json:"fingerprint"`
	// V3 holds the OpenAPI v3 documents by path (api/v1, apis/apps/v1).
	V3 map[string]File `json:"v3"`
	// V2 and V2Protobuf are the OpenAPI v2 document in JSON and protobuf.
	V2         File `json:"v2"`
	V2Protobuf File `json:"v2Protobuf"`
}

// File is one gzip-compressed document under docs/.
type File struct {
	Name string `json:"name"`
	// ETag is the upper-case hex SHA-512 of the uncompressed document, as
	// kube-apiserver computes it; for v3 it is also the index's hash.
	ETag string `json:"etag"`
	// Size is the length of the uncompressed document.
	Size int `json:"size"`
}

// Fingerprint identifies what of reg the documents depend on: the group
// versions, and for each kind its resource, scope, Go types, and the
// names, kinds and verbs of its discovery entries. Short names and
// categories, which the documents do not mention, are left out.
func Fingerprint(reg *registry.Registry) string {
	type entry struct {
		Name, Group, Version, Kind string
		Verbs                      []string
	}
	type kind struct {
		GVR              schema.GroupVersionResource
		Kind, ListKind   string
		Namespaced       bool
		Type, ListType   string
		DiscoveryEntries []entry
	}
	var kinds []kind
	for _, k := range reg.Kinds() {
		fk := kind{GVR: k.GVR, Kind: k.Kind, ListKind: k.ListKind, Namespaced: k.Namespaced, Type: typeName(k.New()), ListType: typeName(k.NewList())}
		for _, r := range discovery.APIResources(k) {
			fk.DiscoveryEntries = append(fk.DiscoveryEntries, entry{Name: r.Name, Group: r.Group, Version: r.Version, Kind: r.Kind, Verbs: r.Verbs})
		}
		kinds = append(kinds, fk)
	}
	b, _ := json.Marshal(kinds) // plain strings and bools: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func typeName(obj runtime.Object) string {
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() + "." + t.Name()
}

// APIModuleVersion returns the version of k8s.io/api linked into the
// running binary, or "" when the binary carries no module information.
func APIModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range info.Deps {
		if m.Path == "k8s.io/api" {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}
