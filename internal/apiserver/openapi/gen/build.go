package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/mizzen-dev/mizzen/internal/apiserver/openapi"
	generated "github.com/mizzen-dev/mizzen/internal/apiserver/openapi/gen/definitions"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// definitions are the schema definitions by name, as the builders take
// them; routes read the options types' fields from them.
type definitions map[string]common.OpenAPIDefinition

func loadDefinitions() definitions {
	return generated.GetOpenAPIDefinitions(func(string) spec.Ref { return spec.Ref{} })
}

// namer names definitions the way kube-apiserver's DefinitionNamer does:
// io.k8s.api.core.v1.Pod, tagged with x-kubernetes-group-version-kind when
// the type is a kind, listing every group version that serves it (meta/v1
// DeleteOptions is a kind in all of them).
type namer map[string][]any

func newNamer(reg *registry.Registry) namer {
	s := runtime.NewScheme()
	seen := map[schema.GroupVersionKind]bool{}
	add := func(gvk schema.GroupVersionKind, obj runtime.Object) {
		if !seen[gvk] {
			seen[gvk] = true
			s.AddKnownTypeWithName(gvk, obj)
		}
	}
	for _, gv := range reg.GroupVersions() {
		metav1.AddToGroupVersion(s, gv)
	}
	for _, k := range reg.Kinds() {
		add(k.GroupVersionKind(), k.New())
		add(k.GVR.GroupVersion().WithKind(k.ListKind), k.NewList())
	}
	for gvk, obj := range otherKinds {
		add(gvk, obj)
	}
	byModel := map[string][]metav1.GroupVersionKind{}
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		m := string(modelOf(reflect.New(t).Interface()))
		byModel[m] = append(byModel[m], metav1.GroupVersionKind(gvk))
	}
	n := namer{}
	for m, gvks := range byModel {
		sort.Slice(gvks, func(i, j int) bool {
			a, b := gvks[i], gvks[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
		for _, gvk := range gvks {
			n[m] = append(n[m], map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
		}
	}
	return n
}

func (n namer) name(model string) (string, spec.Extensions) {
	name := model
	if strings.Contains(name, "/") {
		name = util.ToRESTFriendlyName(name)
	}
	if gvks, ok := n[model]; ok {
		return name, spec.Extensions{"x-kubernetes-group-version-kind": gvks}
	}
	return name, nil
}

// containers returns the routes of each served group version, keyed by the
// path of its OpenAPI v3 document (api/v1, apis/apps/v1).
func containers(reg *registry.Registry) (map[string]*routeContainer, error) {
	defs := loadDefinitions()
	out := map[string]*routeContainer{}
	for _, gv := range reg.GroupVersions() {
		b, err := newRouteBuilder(gv, defs)
		if err != nil {
			return nil, err
		}
		b.addResourceList()
		for _, k := range reg.InGroupVersion(gv) {
			if err := b.addKind(k, defs); err != nil {
				return nil, err
			}
		}
		out[openapi.DocumentPath(gv)] = b.container()
	}
	return out, nil
}

const bearerToken = "BearerToken"

// buildV3 returns the OpenAPI v3 document of each served group version.
func buildV3(reg *registry.Registry, version string) (map[string][]byte, error) {
	byPath, err := containers(reg)
	if err != nil {
		return nil, err
	}
	n := newNamer(reg)
	out := map[string][]byte{}
	for path, c := range byPath {
		cfg := &common.OpenAPIV3Config{
			Info:                           &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: version}},
			CommonResponses:                map[int]*spec3.Response{401: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}}},
			GetDefinitions:                 generated.GetOpenAPIDefinitions,
			GetOperationIDAndTagsFromRoute: operationIDAndTags,
			GetDefinitionName:              n.name,
			SecuritySchemes: spec3.SecuritySchemes{bearerToken: &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
				Type: "apiKey", Description: "Bearer Token authentication", Name: "authorization", In: "header",
			}}},
		}
		doc, err := builder3.BuildOpenAPISpecFromRoutes([]common.RouteContainer{c}, cfg)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", path, err)
		}
		if out[path], err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("encode %s: %w", path, err)
		}
	}
	return out, nil
}

// buildV2 returns the OpenAPI v2 document of all served group versions.
func buildV2(reg *registry.Registry, version string) ([]byte, error) {
	byPath, err := containers(reg)
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	all := make([]common.RouteContainer, len(paths))
	for i, p := range paths {
		all[i] = byPath[p]
	}
	n := newNamer(reg)
	cfg := &common.Config{
		Info:                           &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: version}},
		CommonResponses:                map[int]spec.Response{401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}}},
		GetDefinitions:                 generated.GetOpenAPIDefinitions,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		GetDefinitionName:              n.name,
		SecurityDefinitions: &spec.SecurityDefinitions{bearerToken: &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Description: "Bearer Token authentication", Name: "authorization", In: "header",
		}}},
		DefaultSecurity: []map[string][]string{{bearerToken: {}}},
	}
	doc, err := builder.BuildOpenAPISpecFromRoutes(all, cfg)
	if err != nil {
		return nil, fmt.Errorf("build v2: %w", err)
	}
	return json.Marshal(doc)
}
