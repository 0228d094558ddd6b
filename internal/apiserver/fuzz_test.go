package apiserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// The fuzz targets feed untrusted request input (bodies, patches, paths)
// to the code that handles it before storage. Their property is the one
// STYLE.md states for input: no panic, and every refusal is a Status error
// with a client (4xx) code.

var (
	fuzzMediaTypes  = []string{mediaJSON, mediaYAML, mediaProtobuf}
	fuzzValidations = []string{"", "Strict", "Warn", "Ignore"}
	fuzzPatchTypes  = []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}
)

// pick chooses an element of xs by a fuzzed index.
func pick[T any](xs []T, i uint8) T { return xs[int(i)%len(xs)] }

// fuzzServer returns a Server with what decode, applyPatch and parse use:
// the codecs, the registry and a silent logger.
func fuzzServer(tb testing.TB) *Server {
	tb.Helper()
	scheme, err := kinds.Scheme()
	if err != nil {
		tb.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	return &Server{reg: kinds.Registry(), codecs: newCodecs(scheme), log: logrus.NewEntry(log)}
}

// requireStatus fails unless err is a *StatusError with a code in [lo, hi].
func requireStatus(t *testing.T, err error, lo, hi int32) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error is a %T, not a *StatusError: %v", err, err)
	}
	if code := se.Status().Code; code < lo || code > hi {
		t.Fatalf("status code %d (reason %q) outside [%d, %d]: %v", code, apierrors.ReasonForError(err), lo, hi, err)
	}
}

// decodeTarget is a kind a request body is decoded into.
type decodeTarget struct {
	gvk schema.GroupVersionKind
	new func() runtime.Object
}

// decodeTargets are every registered kind plus the subresource bodies
// (Scale, Binding) the handlers decode.
func decodeTargets(reg *registry.Registry) []decodeTarget {
	var out []decodeTarget
	for _, k := range reg.Kinds() {
		out = append(out, decodeTarget{k.GroupVersionKind(), k.New})
	}
	return append(out,
		decodeTarget{scaleGVK, func() runtime.Object { return &autoscalingv1.Scale{} }},
		decodeTarget{corev1.SchemeGroupVersion.WithKind("Binding"), func() runtime.Object { return &corev1.Binding{} }},
	)
}

func fuzzPod() *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c-x2x9z", Namespace: "default", UID: "3b0a5a57-6f6c-4b8e-9d0e-1f7a2c7e9b11",
			ResourceVersion: "1042", Labels: map[string]string{"app": "web", "pod-template-hash": "7d4b9c"},
			Annotations: map[string]string{"note": "x"}, Finalizers: []string{"example.com/a", "example.com/b"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c", UID: "11111111-2222-3333-4444-555555555555"}}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx:1.27", Args: []string{"-g", "daemon off;"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				},
				VolumeMounts:   []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/web"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}},
			}, {Name: "sidecar", Image: "busybox", Command: []string{"sleep", "3600"}}},
			Volumes:                       []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}}},
			Tolerations:                   []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			NodeName:                      "node-1",
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func fuzzDeployment() *appsv1.Deployment {
	replicas := int32(3)
	pod := fuzzPod()
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", ResourceVersion: "977",
			Generation: 2, Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"front"}}}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}, Spec: pod.Spec},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: &intstr.IntOrString{Type: intstr.String, StrVal: "25%"}, MaxUnavailable: &intstr.IntOrString{IntVal: 1}}},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3},
	}
}

// fuzzSamples are realistic objects whose encodings seed FuzzDecode.
func fuzzSamples() []runtime.Object {
	replicas := int32(2)
	return []runtime.Object{
		fuzzPod(),
		fuzzDeployment(),
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
			Data: map[string]string{"a": "b", "app.conf": "x=1\ny=2\n"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}},
		&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Type: corev1.ServiceTypeNodePort,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}}}},
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "team-a"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}},
		&corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec:   corev1.NodeSpec{PodCIDR: "10.42.1.0/24", Taints: []corev1.Taint{{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}}},
		&coordinationv1.Lease{TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"}, ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"}},
		&autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}, ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: autoscalingv1.ScaleSpec{Replicas: replicas}},
		&corev1.Binding{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Binding"}, ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9c-x2x9z"},
			Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}},
	}
}

// FuzzDecode decodes arbitrary bodies, in each served media type and
// field validation mode, into every kind a handler decodes.
func FuzzDecode(f *testing.F) {
	s := fuzzServer(f)
	targets := decodeTargets(s.reg)
	for i, mt := range fuzzMediaTypes {
		for _, obj := range fuzzSamples() {
			var b strings.Builder
			if err := s.codecs.infos[mt].Serializer.Encode(obj, &b); err != nil {
				f.Fatalf("encode seed %T as %s: %v", obj, mt, err)
			}
			f.Add([]byte(b.String()), uint8(i), uint8(i))
		}
	}
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},"data":{"k":"v","k":"w"},"unknown":1}`,
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","labels":{"x":null}},"data":{"k":1}}`,
		`{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"1e1000","memory":"-1Ei"}}}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":"not-a-time","deletionGracePeriodSeconds":1e40}}`,
		`{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":80,"targetPort":"http"},{"port":81,"targetPort":{"x":1}}]}}`,
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: &d\n  k: v\nbinaryData: *d\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\nc: &c [*b, *b]\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: '!!!not-base64'\n",
		"--- \n- [\n",
		"k8s\x00", "k8s\x00\n\x02v1\x12\x09ConfigMap\x1a\x05\n\x03\n\x01a",
	} {
		for i := range fuzzMediaTypes {
			f.Add([]byte(seed), uint8(i), uint8(1))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, mt, fv uint8) {
		info := s.codecs.infos[pick(fuzzMediaTypes, mt)]
		validation := pick(fuzzValidations, fv)
		for _, tg := range targets {
			obj, err := s.codecs.decode(httptest.NewRecorder(), info, body, tg.gvk, tg.new(), validation)
			if err != nil {
				requireStatus(t, err, 400, 400)
				continue
			}
			if got, want := reflect.TypeOf(obj), reflect.TypeOf(tg.new()); got != want {
				t.Fatalf("decoding as %s returned a %v, want %v", tg.gvk.Kind, got, want)
			}
		}
	})
}

// FuzzPatch applies arbitrary JSON, merge and strategic merge patches to a
// Deployment and a Pod.
func FuzzPatch(f *testing.F) {
	s := fuzzServer(f)
	currents := []runtime.Object{fuzzDeployment(), fuzzPod()}
	var ks []*registry.Kind
	for _, cur := range currents {
		k, ok := s.reg.LookupKind(cur.GetObjectKind().GroupVersionKind())
		if !ok {
			f.Fatalf("kind %v not registered", cur.GetObjectKind().GroupVersionKind())
		}
		ks = append(ks, k)
	}
	seeds := map[types.PatchType][]string{
		types.JSONPatchType: {
			`[{"op":"replace","path":"/spec/replicas","value":5}]`,
			`[{"op":"add","path":"/metadata/labels/new","value":"x"},{"op":"remove","path":"/metadata/annotations"}]`,
			`[{"op":"test","path":"/metadata/name","value":"web"},{"op":"copy","from":"/metadata/labels","path":"/metadata/annotations"}]`,
			`[{"op":"move","from":"/spec/containers/1","path":"/spec/containers/0"},{"op":"add","path":"/spec/containers/-","value":{"name":"x","image":"y"}}]`,
			`[{"op":"remove","path":"/metadata/finalizers/-1"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.28"}]`,
			`[{"op":"replace","path":"/kind","value":"Pod"}]`,
			`[{"op":"add","path":"/spec/containers/9999999999","value":{}}]`,
			`[{"op":"bogus"}]`, `{}`, `[]`, `[null]`,
		},
		types.MergePatchType: {
			`{"spec":{"replicas":3}}`,
			`{"metadata":{"labels":{"app":null,"b":"c"},"finalizers":null}}`,
			`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`,
			`{"apiVersion":"v2"}`, `{"metadata":{"resourceVersion":"1"}}`, `null`, `[]`, `"x"`, `{"spec":{"replicas":"many"}}`,
		},
		types.StrategicMergePatchType: {
			`{"spec":{"replicas":4}}`,
			`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`,
			`{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}],"$setElementOrder/containers":[{"name":"web"}]}}`,
			`{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/a"],"labels":{"$patch":"replace","x":"y"}}}`,
			`{"spec":{"$retainKeys":["containers"],"containers":[{"name":"web","env":[{"name":"A","$patch":"delete"}]}]}}`,
			`{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}`,
			`{"spec":{"template":{"spec":{"containers":[{"$patch":"replace"}]}}}}`,
			`{"spec":{"containers":[{"ports":[{"containerPort":80,"$patch":"merge"}]}]}}`,
			`{"$patch":"delete"}`, `{"spec":{"$patch":"replace"}}`, `{"spec":{"volumes":{"$patch":"x"}}}`, `[]`, `null`,
		},
	}
	for i, pt := range fuzzPatchTypes {
		for _, p := range seeds[pt] {
			for target := range currents {
				f.Add([]byte(p), uint8(i), uint8(target), uint8(0))
			}
		}
	}
	f.Fuzz(func(t *testing.T, patch []byte, pt, target, fv uint8) {
		i := int(target) % len(currents)
		k := ks[i]
		obj, err := s.applyPatch(httptest.NewRecorder(), k, currents[i].DeepCopyObject(), pick(fuzzPatchTypes, pt), patch, pick(fuzzValidations, fv))
		if err != nil {
			requireStatus(t, err, 400, 499)
			return
		}
		if got, want := reflect.TypeOf(obj), reflect.TypeOf(k.New()); got != want {
			t.Fatalf("patching a %s returned a %v", k.Kind, got)
		}
		if _, err := json.Marshal(obj); err != nil {
			t.Fatalf("patched %s does not encode: %v", k.Kind, err)
		}
	})
}

// FuzzParsePath resolves arbitrary URL paths against the registry.
func FuzzParsePath(f *testing.F) {
	s := fuzzServer(f)
	for _, p := range []string{
		"/api/v1/pods", "/api/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods/web/status",
		"/api/v1/namespaces/default/pods/web/log", "/api/v1/namespaces/default/pods/web/binding",
		"/api/v1/namespaces", "/api/v1/namespaces/default", "/api/v1/namespaces/default/status", "/api/v1/namespaces/default/finalize",
		"/api/v1/nodes/n1/status", "/apis/apps/v1/namespaces/default/deployments/web/scale",
		"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "/apis/events.k8s.io/v1/events",
		"/api/v1/namespaces/default/nodes", "/api/v1/namespaces//pods", "/api", "/apis/apps", "/", "",
		"//api//v1//pods//", "/api/v1/namespaces/default/pods/a/b/c", "/apis/apps/v1/deployments/x/y/z/w",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rq, err := s.parse(path)
		if err != nil {
			requireStatus(t, err, 404, 404)
			return
		}
		if rq.kind == nil {
			t.Fatalf("parse(%q) returned no kind and no error", path)
		}
		if rq.namespace != "" && !rq.kind.Namespaced {
			t.Fatalf("parse(%q): namespace %q on cluster-scoped %s", path, rq.namespace, rq.kind.Kind)
		}
		if rq.sub != "" && (rq.name == "" || !hasSubresource(rq.kind, rq.sub)) {
			t.Fatalf("parse(%q): subresource %q of %s with name %q", path, rq.sub, rq.kind.Kind, rq.name)
		}
		for _, part := range []string{rq.namespace, rq.name, rq.sub} {
			if strings.Contains(part, "/") {
				t.Fatalf("parse(%q): path segment %q holds a slash", path, part)
			}
		}
	})
}
