package main

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"unicode"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"

	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Model names of the apimachinery types the operations read and write.
const (
	modelDeleteOptions = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
	modelPatch         = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
	modelResourceList  = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"
	modelListOptions   = "io.k8s.apimachinery.pkg.apis.meta.v1.ListOptions"
	modelCreateOptions = "io.k8s.apimachinery.pkg.apis.meta.v1.CreateOptions"
	modelUpdateOptions = "io.k8s.apimachinery.pkg.apis.meta.v1.UpdateOptions"
	modelPatchOptions  = "io.k8s.apimachinery.pkg.apis.meta.v1.PatchOptions"
	modelPodLogOptions = "io.k8s.api.core.v1.PodLogOptions"

	// listOptionsNoWatch keys the list options of a collection delete,
	// which takes neither watch nor allowWatchBookmarks.
	listOptionsNoWatch = modelListOptions + " without watch"
)

const (
	prettyDescription    = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."
	namespaceDescription = "object name and auth scope, such as for teams and projects"
)

// Content types of the operations: what mizzen's API server reads and
// writes. Unlike Kubernetes it takes no apply patches (server-side apply).
var (
	produceObject = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	produceList   = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"}
	produceLog    = []string{"text/plain"}
	consumeAny    = []string{"*/*"}
	consumePatch  = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
)

// otherKinds are the kinds of subresources that live outside the served
// group versions; subresources of any other foreign kind are left out of
// the documents.
var otherKinds = map[schema.GroupVersionKind]runtime.Object{
	autoscalingv1.SchemeGroupVersion.WithKind("Scale"): &autoscalingv1.Scale{},
	corev1.SchemeGroupVersion.WithKind("Binding"):      &corev1.Binding{},
}

// modelName names a definition; it is what builders get as a payload
// sample, and util.GetCanonicalTypeName returns it unchanged.
type modelName string

func (m modelName) OpenAPIModelName() string { return string(m) }

// modelOf returns the name the definitions know a Go API type by: its
// OpenAPI model name (io.k8s.api.core.v1.Pod) where it declares one, its
// Go path otherwise.
func modelOf(obj any) modelName { return modelName(util.GetCanonicalTypeName(obj)) }

// route is one operation of the API, in the form kube-openapi's builders
// read. Its fields follow what kube-apiserver's installer registers.
type route struct {
	method, path, operationID, description, action string
	tags                                           []string
	gvk                                            metav1.GroupVersionKind
	params                                         []common.Parameter
	consumes, produces                             []string
	body                                           any
	responses                                      []common.StatusCodeResponse
}

func (r *route) Method() string                                   { return r.method }
func (r *route) Path() string                                     { return r.path }
func (r *route) OperationName() string                            { return r.operationID }
func (r *route) Parameters() []common.Parameter                   { return r.params }
func (r *route) Description() string                              { return r.description }
func (r *route) Consumes() []string                               { return r.consumes }
func (r *route) Produces() []string                               { return r.produces }
func (r *route) RequestPayloadSample() any                        { return r.body }
func (r *route) ResponsePayloadSample() any                       { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse { return r.responses }

func (r *route) Metadata() map[string]any {
	m := map[string]any{"x-kubernetes-action": r.action}
	if r.gvk.Kind != "" {
		m["x-kubernetes-group-version-kind"] = r.gvk
	}
	return m
}

// operationIDAndTags is the builders' hook for a route's ID and tags.
func operationIDAndTags(r common.Route) (string, []string, error) {
	rt, ok := r.(*route)
	if !ok {
		return "", nil, fmt.Errorf("unexpected route type %T", r)
	}
	return rt.operationID, rt.tags, nil
}

type parameter struct {
	name, description string
	kind              common.ParameterKind
	dataType          string
	required          bool
}

func (p parameter) Name() string               { return p.name }
func (p parameter) Description() string        { return p.description }
func (p parameter) Required() bool             { return p.required }
func (p parameter) Kind() common.ParameterKind { return p.kind }
func (p parameter) DataType() string           { return p.dataType }
func (p parameter) AllowMultiple() bool        { return false }

type response struct {
	code    int
	message string
	model   any
}

func (r response) Code() int       { return r.code }
func (r response) Message() string { return r.message }
func (r response) Model() any      { return r.model }

func responses(model any, codes ...int) []common.StatusCodeResponse {
	out := make([]common.StatusCodeResponse, len(codes))
	for i, c := range codes {
		out[i] = response{code: c, message: http.StatusText(c), model: model}
	}
	return out
}

// routeContainer holds the routes of one group version.
type routeContainer struct {
	root   string
	routes []common.Route
}

func (c *routeContainer) RootPath() string                   { return c.root }
func (c *routeContainer) PathParameters() []common.Parameter { return nil }
func (c *routeContainer) Routes() []common.Route             { return c.routes }

// routeBuilder turns the kinds of one group version into routes.
type routeBuilder struct {
	gv     schema.GroupVersion
	root   string // /api/v1 or /apis/GROUP/VERSION
	prefix string // CoreV1, AppsV1: the group-version part of operation IDs
	tag    string // core_v1, apps_v1
	// query holds the query parameters of each options type, from its schema.
	query  map[string][]common.Parameter
	routes []common.Route
}

func newRouteBuilder(gv schema.GroupVersion, defs definitions) (*routeBuilder, error) {
	b := &routeBuilder{gv: gv, query: map[string][]common.Parameter{}}
	group := gv.Group
	if group == "" {
		group = "core"
		b.root = "/api/" + gv.Version
	} else {
		b.root = "/apis/" + gv.Group + "/" + gv.Version
	}
	group = strings.TrimSuffix(group, ".k8s.io")
	b.prefix = validOperationID(group, true) + validOperationID(gv.Version, true)
	b.tag = validOperationID(group, false) + "_" + validOperationID(gv.Version, false)
	for _, name := range []string{modelListOptions, modelCreateOptions, modelUpdateOptions, modelPatchOptions, modelDeleteOptions, modelPodLogOptions} {
		params, err := queryParams(defs, name)
		if err != nil {
			return nil, err
		}
		b.query[name] = params
	}
	for _, p := range b.query[modelListOptions] {
		if p.Name() != "watch" && p.Name() != "allowWatchBookmarks" {
			b.query[listOptionsNoWatch] = append(b.query[listOptionsNoWatch], p)
		}
	}
	return b, nil
}

// queryParams turns the simple fields of an options type into query
// parameters, as kube-apiserver's AddObjectParams does.
func queryParams(defs definitions, model string) ([]common.Parameter, error) {
	def, ok := defs[model]
	if !ok {
		return nil, fmt.Errorf("no schema for %s", model)
	}
	var out []common.Parameter
	for name, prop := range def.Schema.Properties {
		if name == "apiVersion" || name == "kind" {
			continue
		}
		typ := prop.Type
		if typ.Contains("array") && prop.Items != nil && prop.Items.Schema != nil {
			typ = prop.Items.Schema.Type
		}
		if len(typ) != 1 || typ[0] == "object" || typ[0] == "array" {
			continue
		}
		out = append(out, parameter{name: name, description: prop.Description, kind: common.QueryParameterKind, dataType: typ[0]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (b *routeBuilder) container() *routeContainer {
	return &routeContainer{root: b.root, routes: b.routes}
}

// addResourceList adds GET of the group version's APIResourceList.
func (b *routeBuilder) addResourceList() {
	b.routes = append(b.routes, &route{
		method: http.MethodGet, path: b.root + "/", operationID: "get" + b.prefix + "APIResources",
		description: "get available resources", tags: []string{b.tag},
		consumes: produceObject, produces: produceObject,
		responses: responses(modelName(modelResourceList), http.StatusOK),
	})
}

// addKind adds the operations of kind k and of the subresources discovery
// lists for it.
func (b *routeBuilder) addKind(k *registry.Kind, defs definitions) error {
	model := modelOf(k.New())
	list := modelOf(k.NewList())
	for _, m := range []modelName{model, list} {
		if _, ok := defs[string(m)]; !ok {
			return fmt.Errorf("no schema for %s of %s: add its package to the openapi-gen line of generate.go and run go generate", m, k.GVR)
		}
	}
	gvk := metav1.GroupVersionKind(k.GroupVersionKind())
	ns, nsParams := "", []common.Parameter(nil)
	base := b.root + "/" + k.GVR.Resource
	if k.Namespaced {
		ns = "Namespaced"
		nsParams = []common.Parameter{parameter{name: "namespace", description: namespaceDescription, kind: common.PathParameterKind, dataType: "string", required: true}}
		base = b.root + "/namespaces/{namespace}/" + k.GVR.Resource
	}
	item := base + "/{name}"
	nameParam := func(kind string) common.Parameter {
		return parameter{name: "name", description: "name of the " + kind, kind: common.PathParameterKind, dataType: "string", required: true}
	}
	itemParams := append([]common.Parameter{nameParam(k.Kind)}, nsParams...)
	r := func(method, path, verb, op, action, desc string, params []common.Parameter) *route {
		return &route{
			method: method, path: path, operationID: verb + b.prefix + op, description: desc, action: action,
			tags: []string{b.tag}, gvk: gvk, params: append(slices.Clone(params), pretty()), consumes: consumeAny, produces: produceObject,
		}
	}
	entries := discovery.APIResources(k)
	for _, verb := range entries[0].Verbs {
		switch verb {
		case "list":
			rt := r(http.MethodGet, base, "list", ns+k.Kind, "list", "list or watch objects of kind "+k.Kind, b.with(nsParams, modelListOptions))
			rt.produces, rt.responses = produceList, responses(list, http.StatusOK)
			b.routes = append(b.routes, rt)
			if k.Namespaced {
				rt := r(http.MethodGet, b.root+"/"+k.GVR.Resource, "list", k.Kind+"ForAllNamespaces", "list", "list or watch objects of kind "+k.Kind, b.with(nil, modelListOptions))
				rt.produces, rt.responses = produceList, responses(list, http.StatusOK)
				b.routes = append(b.routes, rt)
			}
		case "create":
			rt := r(http.MethodPost, base, "create", ns+k.Kind, "post", "create"+article(k.Kind)+k.Kind, b.with(nsParams, modelCreateOptions))
			rt.params, rt.body = append(rt.params, body(true)), model
			rt.responses = responses(model, http.StatusOK, http.StatusCreated, http.StatusAccepted)
			b.routes = append(b.routes, rt)
		case "deletecollection":
			rt := r(http.MethodDelete, base, "delete", "Collection"+ns+k.Kind, "deletecollection", "delete collection of "+k.Kind,
				b.with(nsParams, modelDeleteOptions, listOptionsNoWatch))
			// mizzen answers with the list of the deleted objects.
			rt.params, rt.body = append(rt.params, body(false)), modelName(modelDeleteOptions)
			rt.responses = responses(list, http.StatusOK)
			b.routes = append(b.routes, rt)
		case "get":
			rt := r(http.MethodGet, item, "read", ns+k.Kind, "get", "read the specified "+k.Kind, itemParams)
			rt.responses = responses(model, http.StatusOK)
			b.routes = append(b.routes, rt)
		case "update":
			rt := r(http.MethodPut, item, "replace", ns+k.Kind, "put", "replace the specified "+k.Kind, b.with(itemParams, modelUpdateOptions))
			rt.params, rt.body = append(rt.params, body(true)), model
			rt.responses = responses(model, http.StatusOK, http.StatusCreated)
			b.routes = append(b.routes, rt)
		case "patch":
			rt := r(http.MethodPatch, item, "patch", ns+k.Kind, "patch", "partially update the specified "+k.Kind, b.with(itemParams, modelPatchOptions))
			rt.params, rt.body, rt.consumes = append(rt.params, body(true)), modelName(modelPatch), consumePatch
			rt.responses = responses(model, http.StatusOK, http.StatusCreated)
			b.routes = append(b.routes, rt)
		case "delete":
			rt := r(http.MethodDelete, item, "delete", ns+k.Kind, "delete", "delete"+article(k.Kind)+k.Kind, b.with(itemParams, modelDeleteOptions))
			// mizzen answers with the deleted object, or the object marked
			// for deletion, always with 200.
			rt.params, rt.body = append(rt.params, body(false)), modelName(modelDeleteOptions)
			rt.responses = responses(model, http.StatusOK)
			b.routes = append(b.routes, rt)
		}
	}

	for _, e := range entries[1:] {
		sub := strings.TrimPrefix(e.Name, k.GVR.Resource+"/")
		subGVK := schema.GroupVersionKind{Group: e.Group, Version: e.Version, Kind: e.Kind}
		if e.Group == "" && e.Version == "" {
			subGVK = b.gv.WithKind(e.Kind)
		}
		var subModel any
		switch obj, known := otherKinds[subGVK]; {
		case subGVK == k.GroupVersionKind():
			subModel = model
		case known:
			subModel = modelOf(obj)
		default:
			continue // a kind with no schema here: leave the subresource out
		}
		path := item + "/" + sub
		params := append([]common.Parameter{nameParam(e.Kind)}, nsParams...)
		op := ns + k.Kind + title(sub)
		for _, verb := range e.Verbs {
			var rt *route
			switch verb {
			case "get":
				rt = r(http.MethodGet, path, "read", op, "get", "read "+sub+" of the specified "+k.Kind, params)
				rt.responses = responses(subModel, http.StatusOK)
				if sub == "log" {
					rt.params = b.with(rt.params, modelPodLogOptions)
					rt.produces, rt.responses = produceLog, responses("", http.StatusOK)
				}
			case "update":
				rt = r(http.MethodPut, path, "replace", op, "put", "replace "+sub+" of the specified "+k.Kind, b.with(params, modelUpdateOptions))
				rt.params, rt.body = append(rt.params, body(true)), subModel
				rt.responses = responses(subModel, http.StatusOK, http.StatusCreated)
			case "patch":
				rt = r(http.MethodPatch, path, "patch", op, "patch", "partially update "+sub+" of the specified "+k.Kind, b.with(params, modelPatchOptions))
				rt.params, rt.body, rt.consumes = append(rt.params, body(true)), modelName(modelPatch), consumePatch
				rt.responses = responses(subModel, http.StatusOK, http.StatusCreated)
			case "create":
				rt = r(http.MethodPost, path, "create", op, "post", "create "+sub+" of"+article(k.Kind)+k.Kind, b.with(params, modelCreateOptions))
				rt.params, rt.body = append(rt.params, body(true)), subModel
				rt.responses = responses(subModel, http.StatusOK, http.StatusCreated, http.StatusAccepted)
			default:
				continue
			}
			rt.gvk = metav1.GroupVersionKind(subGVK)
			b.routes = append(b.routes, rt)
		}
	}
	return nil
}

// with returns params followed by the query parameters of the options
// types.
func (b *routeBuilder) with(params []common.Parameter, options ...string) []common.Parameter {
	out := append([]common.Parameter{}, params...)
	for _, o := range options {
		out = append(out, b.query[o]...)
	}
	return out
}

func pretty() common.Parameter {
	return parameter{name: "pretty", description: prettyDescription, kind: common.QueryParameterKind, dataType: "string"}
}

func body(required bool) common.Parameter {
	return parameter{name: "body", kind: common.BodyParameterKind, required: required}
}

// article is kube-apiserver's article for a kind in descriptions ("create
// a Pod", "create an Event", "create Endpoints"), padded with spaces.
func article(noun string) string {
	if !strings.HasSuffix(noun, "ss") && strings.HasSuffix(noun, "s") {
		return " "
	}
	if strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return " an "
	}
	return " a "
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// validOperationID is kube-apiserver's ToValidOperationID: letters are
// kept, anything else starts a new capitalised word.
func validOperationID(s string, capitalizeFirst bool) string {
	var sb strings.Builder
	capitalize := capitalizeFirst
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalize {
				r = unicode.ToUpper(r)
				capitalize = false
			}
			sb.WriteRune(r)
		} else {
			capitalize = true
		}
	}
	return sb.String()
}
