// Package discovery serves the Kubernetes discovery documents built from the
// registry of kinds: /api, /api/v1, /apis, /apis/{group} and
// /apis/{group}/{version}, both the legacy documents and, when the client
// asks for it, the aggregated APIGroupDiscoveryList of apidiscovery.k8s.io
// that kubectl 1.32 requests first.
package discovery

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Discovery serves the discovery documents of one registry. Everything but
// the per-request server address is computed once by New; a Discovery is
// immutable and safe for concurrent use.
type Discovery struct {
	// coreVersions are the versions of the core group ("v1"), newest first.
	coreVersions []string
	// groups are the served named groups in registry order, without
	// serverAddressByClientCIDRs (added per request).
	groups []metav1.APIGroup
	// group holds the encoded APIGroup of /apis/{group}.
	group map[string][]byte
	// resources holds the encoded APIResourceList of /api/v1 and
	// /apis/{group}/{version}.
	resources map[schema.GroupVersion][]byte
	// aggregatedAPI and aggregatedAPIs are the aggregated documents of /api
	// (the core group) and /apis (every other group).
	aggregatedAPI, aggregatedAPIs aggregated
}

// aggregated is an APIGroupDiscoveryList encoded in both versions clients
// may ask for, with its ETag.
type aggregated struct {
	v2, v2beta1 []byte
	etag        string
}

// New computes the discovery documents of reg.
func New(reg *registry.Registry) *Discovery {
	d := &Discovery{
		group:     map[string][]byte{},
		resources: map[schema.GroupVersion][]byte{},
	}
	versions := map[string][]string{}
	var groupNames []string
	for _, gv := range reg.GroupVersions() {
		if _, seen := versions[gv.Group]; !seen {
			groupNames = append(groupNames, gv.Group)
		}
		versions[gv.Group] = append(versions[gv.Group], gv.Version)
	}

	var core, named []apidiscoveryv2.APIGroupDiscovery
	for _, name := range groupNames {
		vs := versions[name]
		sort.SliceStable(vs, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(vs[i], vs[j]) > 0 })
		disc := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for _, v := range vs {
			gv := schema.GroupVersion{Group: name, Version: v}
			list := resourceList(reg.InGroupVersion(gv))
			d.resources[gv] = encodeResourceList(gv, list)
			disc.Versions = append(disc.Versions, apidiscoveryv2.APIVersionDiscovery{
				Version:   v,
				Resources: aggregatedResources(list),
				Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			})
		}
		if name == "" {
			d.coreVersions = vs
			core = append(core, disc)
			continue
		}
		g := metav1.APIGroup{Name: name}
		for _, v := range vs {
			g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: name + "/" + v, Version: v})
		}
		g.PreferredVersion = g.Versions[0]
		d.groups = append(d.groups, g)
		g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		d.group[name] = mustJSON(g)
		named = append(named, disc)
	}
	d.aggregatedAPI = newAggregated(core)
	d.aggregatedAPIs = newAggregated(named)
	return d
}

// Mount registers the discovery handlers on r, each path with and without
// a trailing slash, as kube-apiserver serves them.
func (d *Discovery) Mount(r chi.Router) {
	for _, slash := range []string{"", "/"} {
		r.Get("/api"+slash, d.serveAPI)
		r.Get("/api/{version}"+slash, d.serveCoreVersion)
		r.Get("/apis"+slash, d.serveAPIs)
		r.Get("/apis/{group}"+slash, d.serveGroup)
		r.Get("/apis/{group}/{version}"+slash, d.serveGroupVersion)
	}
}

func (d *Discovery) serveAPI(w http.ResponseWriter, r *http.Request) {
	f := negotiate(r.Header.Get("Accept"))
	if f == formatLegacy {
		w.Header().Set("Vary", "Accept")
		writeJSON(w, http.StatusOK, contentTypeJSON, mustJSON(metav1.APIVersions{
			TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
			Versions:                   append([]string{}, d.coreVersions...),
			ServerAddressByClientCIDRs: serverAddresses(r),
		}))
		return
	}
	d.aggregatedAPI.serve(w, r, f)
}

func (d *Discovery) serveAPIs(w http.ResponseWriter, r *http.Request) {
	f := negotiate(r.Header.Get("Accept"))
	if f == formatLegacy {
		list := metav1.APIGroupList{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups:   make([]metav1.APIGroup, len(d.groups)),
		}
		addresses := serverAddresses(r)
		for i, g := range d.groups {
			g.ServerAddressByClientCIDRs = addresses
			list.Groups[i] = g
		}
		w.Header().Set("Vary", "Accept")
		writeJSON(w, http.StatusOK, contentTypeJSON, mustJSON(list))
		return
	}
	d.aggregatedAPIs.serve(w, r, f)
}

func (d *Discovery) serveCoreVersion(w http.ResponseWriter, r *http.Request) {
	d.serveResources(w, schema.GroupVersion{Version: chi.URLParam(r, "version")})
}

func (d *Discovery) serveGroup(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "group")
	body, ok := d.group[name]
	if !ok || name == "" {
		writeNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, contentTypeJSON, body)
}

func (d *Discovery) serveGroupVersion(w http.ResponseWriter, r *http.Request) {
	gv := schema.GroupVersion{Group: chi.URLParam(r, "group"), Version: chi.URLParam(r, "version")}
	if gv.Group == "" {
		writeNotFound(w)
		return
	}
	d.serveResources(w, gv)
}

func (d *Discovery) serveResources(w http.ResponseWriter, gv schema.GroupVersion) {
	body, ok := d.resources[gv]
	if !ok {
		writeNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, contentTypeJSON, body)
}

// newAggregated encodes groups as an APIGroupDiscoveryList in v2 and
// v2beta1 (the two have the same fields), with kube-apiserver's ETag: the
// upper-case hex SHA-512 of the v2 JSON.
func newAggregated(groups []apidiscoveryv2.APIGroupDiscovery) aggregated {
	list := apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: apidiscoveryv2.SchemeGroupVersion.String()},
		Items:    groups,
	}
	if list.Items == nil {
		list.Items = []apidiscoveryv2.APIGroupDiscovery{}
	}
	v2 := mustJSON(list)
	var beta apidiscoveryv2beta1.APIGroupDiscoveryList
	if err := json.Unmarshal(v2, &beta); err != nil {
		panic(fmt.Sprintf("discovery: convert to v2beta1: %v", err)) // the two versions have the same fields
	}
	beta.APIVersion = apidiscoveryv2beta1.SchemeGroupVersion.String()
	return aggregated{v2: v2, v2beta1: mustJSON(beta), etag: fmt.Sprintf("%X", sha512.Sum512(v2))}
}

// serve writes the aggregated document in format f, or 406 when the
// request accepts none that discovery serves.
func (a *aggregated) serve(w http.ResponseWriter, r *http.Request, f format) {
	var body []byte
	var contentType string
	switch f {
	case formatV2:
		body, contentType = a.v2, contentTypeV2
	case formatV2Beta1:
		body, contentType = a.v2beta1, contentTypeV2Beta1
	default:
		msg := "only the following media types are accepted: " + strings.Join([]string{contentTypeJSON, contentTypeV2, contentTypeV2Beta1}, ", ")
		status := apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "", msg, 0, false).Status()
		writeJSON(w, http.StatusNotAcceptable, contentTypeJSON, mustJSON(statusWithType(status)))
		return
	}
	etag := strconv.Quote(a.etag)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "public")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, contentType, body)
}

// serverAddresses is the serverAddressByClientCIDRs of a legacy document:
// every client reaches the server at the address it used.
func serverAddresses(r *http.Request) []metav1.ServerAddressByClientCIDR {
	return []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}
}

// encodeResourceList encodes the APIResourceList of gv. Like
// kube-apiserver, the core group's list carries no apiVersion.
func encodeResourceList(gv schema.GroupVersion, resources []metav1.APIResource) []byte {
	list := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: resources,
	}
	if gv.Group == "" {
		list.APIVersion = ""
	}
	if list.APIResources == nil {
		list.APIResources = []metav1.APIResource{}
	}
	return mustJSON(list)
}

func writeNotFound(w http.ResponseWriter) {
	status := apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "", "", 0, false).Status()
	writeJSON(w, http.StatusNotFound, contentTypeJSON, mustJSON(statusWithType(status)))
}

func statusWithType(s metav1.Status) metav1.Status {
	s.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	return s
}

func writeJSON(w http.ResponseWriter, code int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// mustJSON encodes the discovery types, which cannot fail to encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("discovery: encode %T: %v", v, err))
	}
	return b
}
