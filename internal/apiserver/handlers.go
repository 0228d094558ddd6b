package apiserver

import (
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

func (s *Server) get(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, true)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	var obj runtime.Object
	if r.URL.Query().Get("resourceVersion") == "0" {
		res := s.store.Resource(rq.kind)
		o, ok := res.Get(res.Key(nsOf(rq), rq.name))
		if !ok {
			s.codecs.writeError(w, r, apierrors.NewNotFound(rq.kind.GroupResource(), rq.name))
			return
		}
		obj = rq.kind.Present(o)
	} else if obj, err = s.store.Get(r.Context(), rq.kind, rq.namespace, rq.name); err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	if out.table != nil {
		s.codecs.write(w, http.StatusOK, out, s.table(rq.kind, []runtime.Object{obj}, "", "", out, false))
		return
	}
	s.codecs.write(w, http.StatusOK, out, obj)
}

func nsOf(rq request) string {
	if !rq.kind.Namespaced {
		return ""
	}
	return rq.namespace
}

// listOptions parses the list query parameters.
func listOptions(r *http.Request, rq request) (rest.ListOptions, error) {
	q := r.URL.Query()
	o := rest.ListOptions{
		Namespace:            rq.namespace,
		ResourceVersion:      q.Get("resourceVersion"),
		ResourceVersionMatch: metav1.ResourceVersionMatch(q.Get("resourceVersionMatch")),
		Continue:             q.Get("continue"),
	}
	var err error
	if o.Labels, err = labels.Parse(q.Get("labelSelector")); err != nil {
		return o, apierrors.NewBadRequest(err.Error())
	}
	if o.Fields, err = fields.ParseSelector(q.Get("fieldSelector")); err != nil {
		return o, apierrors.NewBadRequest(err.Error())
	}
	if l := q.Get("limit"); l != "" {
		if o.Limit, err = strconv.ParseInt(l, 10, 64); err != nil || o.Limit < 0 {
			return o, apierrors.NewBadRequest("invalid limit: " + l)
		}
	}
	switch o.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		return o, apierrors.NewBadRequest("unsupported resourceVersionMatch: " + string(o.ResourceVersionMatch))
	}
	if o.ResourceVersionMatch != "" && o.ResourceVersion == "" && !q.Has("sendInitialEvents") {
		return o, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if o.Continue != "" && o.ResourceVersion != "" && o.ResourceVersion != "0" {
		return o, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	}
	return o, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, true)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	o, err := listOptions(r, rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	res, err := s.store.List(r.Context(), rq.kind, o)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	rv := strconv.FormatInt(res.Revision, 10)
	if out.table != nil {
		s.codecs.write(w, http.StatusOK, out, s.table(rq.kind, res.Items, rv, res.Continue, out, false))
		return
	}
	list, err := newList(rq.kind.NewList, rq.kind.GVR.GroupVersion().WithKind(rq.kind.ListKind), res.Items, rv, res.Continue)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, list)
}

// dryRun reports whether the request asks for dryRun=All; other values are
// refused as Kubernetes does.
func dryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest("dryRun: Unsupported value: \"" + v + "\": supported values: \"All\"")
		}
	}
	return len(vals) > 0, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	obj, err := s.decodeBody(w, r, rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	created, err := s.store.Create(r.Context(), rq.kind, rq.namespace, obj, rest.CreateOptions{DryRun: dry})
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusCreated, out, created)
}

// decodeBody reads and decodes the request body as an object of the
// request's kind.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, rq request) (runtime.Object, error) {
	info, err := s.codecs.decoderFor(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return s.codecs.decode(w, info, body, rq.kind.GroupVersionKind(), rq.kind.New(), r.URL.Query().Get("fieldValidation"))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	dry, err := dryRun(r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	obj, err := s.decodeBody(w, r, rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	updated, err := s.store.Update(r.Context(), rq.kind, rq.namespace, rq.name, func(cur runtime.Object) (runtime.Object, error) {
		if rq.sub == "finalize" {
			return finalize(cur, obj)
		}
		return obj, nil
	}, rest.UpdateOptions{Subresource: subForUpdate(rq.sub), DryRun: dry})
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, updated)
}

func subForUpdate(sub string) string {
	switch sub {
	case "status", "finalize":
		return sub
	}
	return ""
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	res, err := s.store.Delete(r.Context(), rq.kind, rq.namespace, rq.name, opts)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, res.Object)
}

// deleteOptions reads DeleteOptions from the body or the query.
func (s *Server) deleteOptions(w http.ResponseWriter, r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		info, err := s.codecs.decoderFor(r)
		if err != nil {
			return nil, err
		}
		gvk := metav1.SchemeGroupVersion.WithKind("DeleteOptions")
		if _, _, err := info.Serializer.Decode(body, &gvk, opts); err != nil {
			return nil, apierrors.NewBadRequest("invalid DeleteOptions: " + err.Error())
		}
	}
	q := r.URL.Query()
	if g := q.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest("invalid gracePeriodSeconds: " + g)
		}
		opts.GracePeriodSeconds = &n
	}
	if p := q.Get("propagationPolicy"); p != "" {
		pp := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &pp
	}
	if q.Has("dryRun") {
		opts.DryRun = q["dryRun"]
	}
	if pp := opts.PropagationPolicy; pp != nil {
		switch *pp {
		case metav1.DeletePropagationForeground, metav1.DeletePropagationBackground, metav1.DeletePropagationOrphan:
		default:
			return nil, apierrors.NewBadRequest("propagationPolicy: Unsupported value: \"" + string(*pp) + "\": supported values: \"Foreground\", \"Background\", \"Orphan\"")
		}
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest("dryRun: Unsupported value: \"" + v + "\": supported values: \"All\"")
		}
	}
	if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID == types.UID("") {
		opts.Preconditions.UID = nil
	}
	return opts, nil
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	lo, err := listOptions(r, rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	opts, err := s.deleteOptions(w, r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	res, err := s.store.List(r.Context(), rq.kind, lo)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	var deleted []runtime.Object
	for _, obj := range res.Items {
		m := metaOf(obj)
		d, err := s.store.Delete(r.Context(), rq.kind, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			s.codecs.writeError(w, r, err)
			return
		}
		deleted = append(deleted, d.Object)
	}
	list, err := newList(rq.kind.NewList, rq.kind.GVR.GroupVersion().WithKind(rq.kind.ListKind), deleted, strconv.FormatInt(res.Revision, 10), "")
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, list)
}
