package apiserver

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

func TestJSONPatchCopyBombIsRefused(t *testing.T) {
	s := fuzzServer(t)
	k, _ := s.reg.Lookup(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	cur := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{"a": strings.Repeat("x", 1000)}}}
	var ops []string
	for i := 0; i < 40; i++ {
		ops = append(ops, fmt.Sprintf(`{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/k%d"}`, i))
	}
	_, err := s.applyPatch(httptest.NewRecorder(), k, cur, types.JSONPatchType, []byte("["+strings.Join(ops, ",")+"]"), "")
	if !apierrors.IsInvalid(err) && !apierrors.IsRequestEntityTooLargeError(err) {
		t.Fatalf("copy bomb: %v", err)
	}
}

func TestJSONPatchOperationLimit(t *testing.T) {
	s := fuzzServer(t)
	k, _ := s.reg.Lookup(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
	ops := strings.Repeat(`{"op":"test","path":"/metadata/name","value":"c"},`, maxJSONPatchOps+1)
	_, err := s.applyPatch(httptest.NewRecorder(), k, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}},
		types.JSONPatchType, []byte("["+strings.TrimSuffix(ops, ",")+"]"), "")
	if !apierrors.IsRequestEntityTooLargeError(err) {
		t.Fatalf("%d operations: %v", maxJSONPatchOps+1, err)
	}
}
