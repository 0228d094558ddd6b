package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

func (s *Server) patch(w http.ResponseWriter, r *http.Request, rq request) {
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
	pt, err := patchType(r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	validation := r.URL.Query().Get("fieldValidation")
	updated, err := s.store.Update(r.Context(), rq.kind, rq.namespace, rq.name, func(cur runtime.Object) (runtime.Object, error) {
		patched, err := s.applyPatch(w, rq.kind, cur, pt, body, validation)
		if err != nil {
			return nil, err
		}
		unlessSetByPatch(patched, cur)
		if rq.sub == "finalize" {
			return finalize(cur, patched)
		}
		return patched, nil
	}, rest.UpdateOptions{Subresource: subForUpdate(rq.sub), DryRun: dry})
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	s.codecs.write(w, http.StatusOK, out, updated)
}

// maxJSONPatchOps caps the operations of one JSON patch, as Kubernetes does.
const maxJSONPatchOps = 10000

// unlessSetByPatch clears the resourceVersion a patched object inherited
// from the current one, so the update retries on concurrent changes; a
// resourceVersion the patch itself set stays as a precondition.
func unlessSetByPatch(patched, cur runtime.Object) {
	if m := metaOf(patched); m.GetResourceVersion() == metaOf(cur).GetResourceVersion() {
		m.SetResourceVersion("")
	}
}

func patchType(r *http.Request) (types.PatchType, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = r.Header.Get("Content-Type")
	}
	switch pt := types.PatchType(mt); pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		return pt, nil
	}
	return "", apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "",
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType), 0, false)
}

// applyPatch applies a patch to cur and decodes the result. cur keeps its
// resourceVersion, so a patch that does not set one updates whatever is
// current; one that does is a precondition.
func (s *Server) applyPatch(w http.ResponseWriter, k *registry.Kind, cur runtime.Object, pt types.PatchType, patch []byte, validation string) (obj runtime.Object, err error) {
	defer func() {
		// The patch libraries are not hardened against every input.
		if p := recover(); p != nil {
			obj, err = nil, apierrors.NewBadRequest(fmt.Sprintf("unable to apply patch: %v", p))
		}
	}()
	original, err := json.Marshal(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var result []byte
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if len(p) > maxJSONPatchOps {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("The allowed operations in a JSON patch is %d, got %d", maxJSONPatchOps, len(p)))
		}
		opts := jsonpatch.NewApplyOptions()
		// "copy" operations may not grow the object past a request's size.
		opts.AccumulatedCopySizeLimit = maxBodyBytes
		if result, err = p.ApplyWithOptions(original, opts); err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	case types.MergePatchType:
		if result, err = jsonpatch.MergePatch(original, patch); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case types.StrategicMergePatchType:
		var pm map[string]interface{}
		if err := json.Unmarshal(patch, &pm); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if result, err = strategicpatch.StrategicMergePatch(original, patch, k.New()); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	return s.codecs.decode(w, s.codecs.infos[mediaJSON], result, k.GroupVersionKind(), k.New(), validation)
}
