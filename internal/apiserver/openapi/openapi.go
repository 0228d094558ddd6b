// Package openapi serves the OpenAPI documents of the served kinds, which
// kubectl reads to decide whether the server validates fields itself (from
// the PATCH operations of /openapi/v3), to compute strategic merge patches,
// to explain fields, and to validate a v1 List on the client side (from the
// protobuf /openapi/v2):
//
//   - /openapi/v3, the index of the per-group-version documents, and
//     /openapi/v3/api/v1, /openapi/v3/apis/GROUP/VERSION;
//   - /openapi/v2, one document for all group versions, in JSON or
//     protobuf.
//
// The documents are generated (see generate.go) and embedded compressed;
// serving them costs no more than writing bytes.
package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/munnerz/goautoneg"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Media types of the documents. Requests name the protobuf types with
// "@v1.0" (what client-go sends) or ".v1.0" (what servers answer).
const (
	mediaJSON      = "application/json"
	mediaV2Proto   = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mediaV2ProtoAt = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
)

// OpenAPI serves the generated OpenAPI documents. It is immutable and safe
// for concurrent use.
type OpenAPI struct {
	index    *document
	v3       map[string]*document // by path: api/v1, apis/apps/v1
	v2, v2pb *document
}

// indexEntry is an entry of the /openapi/v3 index.
type indexEntry struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

// regenerate is the command that brings the documents up to date.
const regenerate = "run go generate ./internal/apiserver/openapi"

// New loads the embedded documents, after checking that they were
// generated for reg and for the k8s.io/api version linked in.
func New(reg *registry.Registry) (*OpenAPI, error) {
	raw, err := docs.ReadFile("docs/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("openapi: no generated documents (%v): %s", err, regenerate)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("openapi: read manifest: %w", err)
	}
	if fp := Fingerprint(reg); fp != m.Fingerprint {
		return nil, fmt.Errorf("openapi: the documents were generated for another registry of kinds: %s", regenerate)
	}
	if v := APIModuleVersion(); v != "" && v != m.APIModule {
		return nil, fmt.Errorf("openapi: the documents were generated from k8s.io/api %s, the binary has %s: %s", m.APIModule, v, regenerate)
	}

	o := &OpenAPI{v3: map[string]*document{}}
	load := func(f File, contentType string) (*document, error) {
		gz, err := docs.ReadFile(path.Join("docs", f.Name))
		if err != nil {
			return nil, fmt.Errorf("openapi: %w: %s", err, regenerate)
		}
		return &document{gz: gz, size: f.Size, etag: f.ETag, contentType: contentType}, nil
	}
	index := map[string]map[string]indexEntry{"paths": {}}
	for p, f := range m.V3 {
		if o.v3[p], err = load(f, mediaJSON); err != nil {
			return nil, err
		}
		index["paths"][p] = indexEntry{ServerRelativeURL: serverRelativeURL(p, f.ETag)}
	}
	if o.v2, err = load(m.V2, mediaJSON); err != nil {
		return nil, err
	}
	if o.v2pb, err = load(m.V2Protobuf, mediaV2Proto); err != nil {
		return nil, err
	}
	body, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	if o.index, err = newDocument(body, mediaJSON); err != nil {
		return nil, err
	}
	return o, nil
}

// Mount registers the OpenAPI handlers on r.
func (o *OpenAPI) Mount(r chi.Router) {
	r.Get("/openapi/v2", o.serveV2)
	r.Get("/openapi/v3", o.index.serve)
	r.Get("/openapi/v3/*", o.serveV3)
}

// DocumentPath is the path of a group version's v3 document under
// /openapi/v3/, which is also its key in the index.
func DocumentPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func serverRelativeURL(path, etag string) string {
	return "/openapi/v3/" + path + "?" + url.Values{"hash": {etag}}.Encode()
}

// serveV3 serves one group version's document the way kube-apiserver's
// handler3 does: a stale ?hash= is redirected to the current one, and a
// current one makes the response cacheable for a year. Only JSON is
// served; the protobuf form, which kubectl never asks for, is refused with
// 406 rather than converted.
func (o *OpenAPI) serveV3(w http.ResponseWriter, r *http.Request) {
	p := chi.URLParam(r, "*")
	doc, ok := o.v3[p]
	if !ok {
		writeStatus(w, apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "", "", 0, false))
		return
	}
	w.Header().Add("Vary", "Accept")
	if negotiate(r.Header.Get("Accept"), mediaJSON) == "" {
		writeNotAcceptable(w, mediaJSON)
		return
	}
	if hash := r.URL.Query().Get("hash"); hash != "" {
		if hash != doc.etag {
			http.Redirect(w, r, serverRelativeURL(p, doc.etag), http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Cache-Control", "public, immutable")
		w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
	}
	doc.serve(w, r)
}

func (o *OpenAPI) serveV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	switch negotiate(r.Header.Get("Accept"), mediaJSON, mediaV2Proto, mediaV2ProtoAt) {
	case mediaJSON:
		o.v2.serve(w, r)
	case mediaV2Proto, mediaV2ProtoAt:
		o.v2pb.serve(w, r)
	default:
		writeNotAcceptable(w, mediaJSON, mediaV2Proto)
	}
}

// negotiate returns the first offer the Accept header admits, trying its
// clauses in order of preference; no header admits the first offer.
func negotiate(accept string, offers ...string) string {
	if accept == "" {
		accept = "*/*"
	}
	for _, c := range goautoneg.ParseAccept(accept) {
		if c.Q <= 0 {
			continue
		}
		for _, offer := range offers {
			typ, sub, _ := strings.Cut(offer, "/")
			if (c.Type == typ || c.Type == "*") && (c.SubType == sub || c.SubType == "*") {
				return offer
			}
		}
	}
	return ""
}

func writeNotAcceptable(w http.ResponseWriter, offers ...string) {
	msg := "only the following media types are accepted: " + strings.Join(offers, ", ")
	writeStatus(w, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "", msg, 0, false))
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, _ := json.Marshal(status)
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(int(status.Code))
	_, _ = w.Write(body)
}
