package controller

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
)

// OwnerHandler returns a Handler that queues the key of the controller
// (by ownerReference) of kind that owns each object it sees.
func OwnerHandler(q Queue, kind string) Handler {
	enqueue := func(obj runtime.Object) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		if ref := metav1.GetControllerOfNoCopy(m); ref != nil && ref.Kind == kind {
			if ns := m.GetNamespace(); ns != "" {
				q.Add(ns + "/" + ref.Name)
			} else {
				q.Add(ref.Name)
			}
		}
	}
	return Handler{Add: enqueue, Update: func(old, obj runtime.Object) { enqueue(old); enqueue(obj) }, Delete: enqueue}
}

// TemplateHash names a pod template (with an optional collision count),
// encoded like Kubernetes' pod-template-hash and controller-revision-hash
// label values: the FNV-32a hash of its JSON.
func TemplateHash(template interface{}, collisionCount *int32) string {
	h := fnv.New32a()
	b, _ := json.Marshal(template)
	h.Write(b)
	if collisionCount != nil {
		fmt.Fprint(h, *collisionCount)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}
