package apiserver

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// maxBodyBytes is the largest request body accepted, as Kubernetes does.
const maxBodyBytes = 3 * 1024 * 1024

// Media types served.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// codecs encodes and decodes objects in the served media types.
type codecs struct {
	scheme *runtime.Scheme
	infos  map[string]runtime.SerializerInfo
}

func newCodecs(scheme *runtime.Scheme) *codecs {
	f := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	c := &codecs{scheme: scheme, infos: map[string]runtime.SerializerInfo{}}
	for _, info := range f.SupportedMediaTypes() {
		c.infos[info.MediaType] = info
	}
	return c
}

// output is what a response is encoded as.
type output struct {
	info runtime.SerializerInfo
	// table is set when the client asked for a meta.k8s.io Table; it holds
	// the Table's group version.
	table *schema.GroupVersion
	// includeObject says what table rows carry (None, Metadata, Object).
	includeObject metav1.IncludeObjectPolicy
}

var errNotAcceptable = apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "",
	"only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf", 0, false)

// negotiate picks the response encoding from the Accept header. Objects
// that allow tables (lists, gets) pass tables=true.
func (c *codecs) negotiate(r *http.Request, tables bool) (output, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return output{info: c.infos[mediaJSON]}, nil
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*":
			mt = mediaJSON
		case "application/json;stream=watch":
			mt = mediaJSON
		}
		info, ok := c.infos[mt]
		if !ok {
			continue
		}
		switch params["as"] {
		case "":
			return output{info: info}, nil
		case "Table":
			if !tables || params["g"] != metav1.GroupName || (params["v"] != "v1" && params["v"] != "v1beta1") || mt == mediaProtobuf {
				continue
			}
			gv := schema.GroupVersion{Group: metav1.GroupName, Version: params["v"]}
			o := output{info: info, table: &gv, includeObject: metav1.IncludeMetadata}
			if p := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject")); p != "" {
				o.includeObject = p
			}
			return o, nil
		}
	}
	return output{}, errNotAcceptable
}

// readBody reads a request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return body, nil
}

// decoderFor returns the serializer of a request's Content-Type.
func (c *codecs) decoderFor(r *http.Request) (runtime.SerializerInfo, error) {
	ct := r.Header.Get("Content-Type")
	mt := mediaJSON
	if ct != "" {
		var err error
		mt, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return runtime.SerializerInfo{}, unsupportedMedia(ct)
		}
	}
	info, ok := c.infos[mt]
	if !ok {
		return runtime.SerializerInfo{}, unsupportedMedia(ct)
	}
	return info, nil
}

func unsupportedMedia(ct string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf), 0, false)
}

// decode decodes body into a new object of gvk. fieldValidation Strict
// refuses unknown and duplicate fields; Warn (the default) reports them as
// warnings; Ignore drops them.
func (c *codecs) decode(w http.ResponseWriter, info runtime.SerializerInfo, body []byte, gvk schema.GroupVersionKind, into runtime.Object, validation string) (runtime.Object, error) {
	dec := runtime.Decoder(info.Serializer)
	if info.StrictSerializer != nil && validation != "Ignore" {
		dec = info.StrictSerializer
	}
	obj, got, err := dec.Decode(body, &gvk, into)
	if err != nil && runtime.IsStrictDecodingError(err) {
		if validation == "Strict" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
		}
		var sde interface{ Errors() []error }
		if errors.As(err, &sde) {
			for _, e := range sde.Errors() {
				w.Header().Add("Warning", `299 - `+strconv.Quote(e.Error()))
			}
		}
		obj, got, err = info.Serializer.Decode(body, &gvk, into)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized or malformed: %v", err))
	}
	if got.Kind != gvk.Kind || got.GroupVersion() != gvk.GroupVersion() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
	}
	return obj, nil
}

// write encodes obj with status code.
func (c *codecs) write(w http.ResponseWriter, code int, out output, obj runtime.Object) {
	info := out.info
	if info.Serializer == nil {
		info = c.infos[mediaJSON]
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(code)
	_ = info.Serializer.Encode(obj, w)
}

// writeError writes err as a metav1.Status.
func (c *codecs) writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := toStatus(err)
	out, nerr := c.negotiate(r, false)
	if nerr != nil {
		out = output{info: c.infos[mediaJSON]}
	}
	c.write(w, int(st.Code), out, st)
}

// toStatus turns any error into a Status.
func toStatus(err error) *metav1.Status {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	st := se.Status()
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	return &st
}

// successStatus is the body of deletes that return a Status.
func successStatus(code int, details *metav1.StatusDetails) *metav1.Status {
	return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: int32(code), Details: details}
}

// setKind sets obj's apiVersion and kind from the scheme.
func (c *codecs) setKind(obj runtime.Object, gv schema.GroupVersion) {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return
	}
	gvk := gvks[0]
	for _, k := range gvks {
		if k.GroupVersion() == gv {
			gvk = k
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
}

// newList builds a list object of kind listKind holding items.
func newList(newFn func() runtime.Object, gvk schema.GroupVersionKind, items []runtime.Object, rv, cont string) (runtime.Object, error) {
	list := newFn()
	if err := meta.SetList(list, items); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(rv)
	lm.SetContinue(cont)
	list.GetObjectKind().SetGroupVersionKind(gvk)
	return list, nil
}
