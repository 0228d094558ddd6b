package apiserver

import (
	"fmt"
	"net/http"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// scaleOf returns the Scale view of a deployment or replica set.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var replicas, current int32
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1.Deployment:
		replicas, current, sel = deref(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		replicas, current, sel = deref(o.Spec.Replicas), o.Status.Replicas, o.Spec.Selector
	default:
		return nil, fmt.Errorf("%T has no scale subresource", obj)
	}
	selector := ""
	if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
		selector = s.String()
	}
	m := objectMeta(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: scaleGVK.GroupVersion().String(), Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion, CreationTimestamp: m.CreationTimestamp},
		Spec:   autoscalingv1.ScaleSpec{Replicas: replicas},
		Status: autoscalingv1.ScaleStatus{Replicas: current, Selector: selector},
	}, nil
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	}
}

func (s *Server) getScale(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	obj, err := s.store.Get(r.Context(), rq.kind, rq.namespace, rq.name)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	sc, err := scaleOf(obj)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, sc)
}

// updateScale serves PUT and PATCH of /scale by changing spec.replicas.
func (s *Server) updateScale(w http.ResponseWriter, r *http.Request, rq request) {
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
	var pt types.PatchType
	var body []byte
	if r.Method == http.MethodPatch {
		if pt, err = patchType(r); err == nil {
			body, err = readBody(w, r)
		}
	} else {
		var info runtime.SerializerInfo
		if info, err = s.codecs.decoderFor(r); err == nil {
			if body, err = readBody(w, r); err == nil {
				_, err = s.codecs.decode(w, info, body, scaleGVK, &autoscalingv1.Scale{}, r.URL.Query().Get("fieldValidation"))
			}
		}
	}
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	scaleKind := &registry.Kind{GVR: autoscalingv1.SchemeGroupVersion.WithResource("scales"), Kind: "Scale",
		New: func() runtime.Object { return &autoscalingv1.Scale{} }}
	updated, err := s.store.Update(r.Context(), rq.kind, rq.namespace, rq.name, func(cur runtime.Object) (runtime.Object, error) {
		sc, err := scaleOf(cur)
		if err != nil {
			return nil, err
		}
		var want runtime.Object
		if pt != "" {
			want, err = s.applyPatch(w, scaleKind, sc, pt, body, "")
		} else {
			want, _, err = s.codecs.infos[mediaJSON].Serializer.Decode(body, &scaleGVK, &autoscalingv1.Scale{})
			if err != nil {
				info, _ := s.codecs.decoderFor(r)
				want, _, err = info.Serializer.Decode(body, &scaleGVK, &autoscalingv1.Scale{})
			}
		}
		if err != nil {
			return nil, err
		}
		ws := want.(*autoscalingv1.Scale)
		if ws.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), rq.name, nil)
		}
		rv := ws.ResourceVersion
		if pt != "" && rv == sc.ResourceVersion {
			rv = "" // inherited from the current object, not set by the patch
		}
		setReplicas(cur, ws.Spec.Replicas)
		metaOf(cur).SetResourceVersion(rv)
		return cur, nil
	}, rest.UpdateOptions{DryRun: dry})
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	sc, _ := scaleOf(updated)
	s.codecs.write(w, http.StatusOK, out, sc)
}

// bind serves POST pods/<name>/binding: it sets spec.nodeName once.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, false)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	info, err := s.codecs.decoderFor(r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	obj, err := s.codecs.decode(w, info, body, corev1.SchemeGroupVersion.WithKind("Binding"), &corev1.Binding{}, "")
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	b := obj.(*corev1.Binding)
	if err := s.store.Bind(r.Context(), rq.kind, rq.namespace, rq.name, b); err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusCreated, out, successStatus(http.StatusCreated, nil))
}

// podLog answers pods/<name>/log from the pod's kubelet (proxy.go).
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, rq request) {
	s.proxyLog(w, r, rq)
}

// finalize applies a namespace's /finalize: only spec.finalizers change.
func finalize(cur, want runtime.Object) (runtime.Object, error) {
	c, ok1 := cur.(*corev1.Namespace)
	nw, ok2 := want.(*corev1.Namespace)
	if !ok1 || !ok2 {
		return nil, apierrors.NewBadRequest("finalize applies to namespaces only")
	}
	c.Spec.Finalizers = nw.Spec.Finalizers
	if nw.ResourceVersion != "" {
		c.ResourceVersion = nw.ResourceVersion
	}
	return c, nil
}

var _ = strconv.Itoa
