package namespace

import (
	"context"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

// client is the fake Client, except that a namespace's status update
// keeps the namespace as the API server does (the fake removes any
// object with a deletionTimestamp and no metadata.finalizers on update,
// but a namespace stays until spec.finalizers are empty and it is
// deleted again).
type client struct {
	*controllertest.Fake
	res controller.MemoryResources
}

func (c client) UpdateStatus(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return c.Fake.UpdateStatus(ctx, obj)
	}
	// Record the write through the fake on a copy without deletion, then
	// put the real object back.
	cp := ns.DeepCopy()
	cp.DeletionTimestamp = nil
	if _, err := c.Fake.UpdateStatus(ctx, cp); err != nil {
		return nil, err
	}
	r := c.res.Resource(corev1.Resource("namespaces"))
	cur, _ := r.Get(r.Key("", ns.Name))
	up := cur.(*corev1.Namespace).DeepCopy()
	up.Status = ns.Status
	up.DeletionTimestamp = ns.DeletionTimestamp
	r.Put(up)
	got, _ := r.Get(r.Key("", ns.Name))
	return got.DeepCopyObject(), nil
}

func newController(t *testing.T, objs ...runtime.Object) (*Controller, *controllertest.Fake, controller.MemoryResources) {
	t.Helper()
	res := controller.MemoryResources{}
	fake := controllertest.New(res)
	log := logrus.New()
	log.SetOutput(t.Output())
	c := New(controller.Env{Resources: res, Client: client{fake, res}, Log: logrus.NewEntry(log)})
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Namespace:
			res.Resource(corev1.Resource("namespaces")).Put(o)
		case *corev1.ConfigMap:
			res.Resource(corev1.Resource("configmaps")).Put(o)
		case *corev1.Secret:
			res.Resource(corev1.Resource("secrets")).Put(o)
		case *corev1.Pod:
			res.Resource(corev1.Resource("pods")).Put(o)
		default:
			t.Fatalf("unexpected %T", o)
		}
	}
	return c, fake, res
}

func terminating(name string, finalizers ...corev1.FinalizerName) *corev1.Namespace {
	now := metav1.Now()
	if finalizers == nil {
		finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "ns-uid", DeletionTimestamp: &now},
		Spec:   corev1.NamespaceSpec{Finalizers: finalizers},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
}

func objMeta(ns, name string, finalizers ...string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Finalizers: finalizers}
}

func verbs(f *controllertest.Fake) string {
	var out []string
	for _, a := range f.Actions() {
		out = append(out, a.Verb+" "+a.Resource+" "+a.Key)
	}
	return strings.Join(out, ", ")
}

func condition(ns *corev1.Namespace, t corev1.NamespaceConditionType) corev1.NamespaceCondition {
	for _, c := range ns.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NamespaceCondition{}
}

func TestNamespaceSync(t *testing.T) {
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	cases := []struct {
		name    string
		objs    []runtime.Object
		actions string
		gone    bool   // the namespace is gone after the sync
		remain  string // NamespaceContentRemaining message
		fins    string // NamespaceFinalizersRemaining message
	}{
		{name: "active namespace is left alone",
			objs: []runtime.Object{active, &corev1.ConfigMap{ObjectMeta: objMeta("a", "c")}}},
		{name: "empty terminating namespace is finalized and deleted",
			objs:    []runtime.Object{terminating("a")},
			actions: "update-status namespaces a, finalize namespaces a, delete namespaces a", gone: true},
		{name: "content is deleted and reported remaining",
			objs: []runtime.Object{terminating("a"), &corev1.ConfigMap{ObjectMeta: objMeta("a", "c1")}, &corev1.ConfigMap{ObjectMeta: objMeta("a", "c2")},
				&corev1.Secret{ObjectMeta: objMeta("a", "s")}, &corev1.ConfigMap{ObjectMeta: objMeta("b", "other")}},
			actions: "delete configmaps a/c1, delete configmaps a/c2, delete secrets a/s, update-status namespaces a",
			remain:  "Some resources are remaining: configmaps. has 2 resource instances, secrets. has 1 resource instances"},
		{name: "content with finalizers is waited for",
			objs:    []runtime.Object{terminating("a"), &corev1.Pod{ObjectMeta: objMeta("a", "p", "example.com/keep")}},
			actions: "delete pods a/p, update-status namespaces a",
			remain:  "Some resources are remaining: pods. has 1 resource instances",
			fins:    "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"},
		{name: "deleted namespace becomes Terminating",
			objs: []runtime.Object{func() runtime.Object {
				ns := terminating("a")
				ns.Status.Phase = corev1.NamespaceActive
				return ns
			}(), &corev1.ConfigMap{ObjectMeta: objMeta("a", "c")}},
			actions: "delete configmaps a/c, update-status namespaces a"},
		{name: "other spec finalizers keep the namespace",
			objs:    []runtime.Object{terminating("a", "example.com/x", corev1.FinalizerKubernetes)},
			actions: "update-status namespaces a, finalize namespaces a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, fake, res := newController(t, tc.objs...)
			if err := c.sync(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			if got := verbs(fake); got != tc.actions {
				t.Fatalf("actions:\n got %s\nwant %s", got, tc.actions)
			}
			o, ok := res.Resource(corev1.Resource("namespaces")).Get(res.Resource(corev1.Resource("namespaces")).Key("", "a"))
			if ok == tc.gone {
				t.Fatalf("namespace present=%v, want gone=%v", ok, tc.gone)
			}
			if !ok || o.(*corev1.Namespace).DeletionTimestamp == nil {
				return
			}
			ns := o.(*corev1.Namespace)
			if ns.Status.Phase != corev1.NamespaceTerminating {
				t.Errorf("phase %s", ns.Status.Phase)
			}
			if cond := condition(ns, corev1.NamespaceContentRemaining); tc.remain != "" && (cond.Message != tc.remain || cond.Status != corev1.ConditionTrue || cond.Reason != "SomeResourcesRemain") {
				t.Errorf("content remaining: %+v", cond)
			}
			if cond := condition(ns, corev1.NamespaceFinalizersRemaining); tc.fins != "" && (cond.Message != tc.fins || cond.Reason != "SomeFinalizersRemain") {
				t.Errorf("finalizers remaining: %+v", cond)
			}
			if _, ok := res.Resource(corev1.Resource("configmaps")).Get(res.Resource(corev1.Resource("configmaps")).Key("b", "other")); !ok && len(tc.objs) > 4 {
				t.Error("object of another namespace deleted")
			}
		})
	}
}

func TestNamespaceDeletedOnceContentIsGone(t *testing.T) {
	c, fake, res := newController(t, terminating("a"), &corev1.ConfigMap{ObjectMeta: objMeta("a", "c")})
	ctx := context.Background()
	if err := c.sync(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	nsRes := res.Resource(corev1.Resource("namespaces"))
	if _, ok := nsRes.Get(nsRes.Key("", "a")); !ok {
		t.Fatal("namespace deleted while content remained")
	}
	fake.Reset()
	// The fake deleted the configmap at once: the next pass finishes.
	if err := c.sync(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := verbs(fake), "update-status namespaces a, finalize namespaces a, delete namespaces a"; got != want {
		t.Fatalf("actions:\n got %s\nwant %s", got, want)
	}
	if _, ok := nsRes.Get(nsRes.Key("", "a")); ok {
		t.Fatal("namespace not deleted")
	}
	st := fake.Actions()[0].Object.(*corev1.Namespace)
	if cond := condition(st, corev1.NamespaceContentRemaining); cond.Status != corev1.ConditionFalse || cond.Reason != "ContentRemoved" || cond.Message != "All content successfully removed" {
		t.Fatalf("content removed condition: %+v", cond)
	}
	if len(st.Status.Conditions) != 5 {
		t.Fatalf("conditions: %+v", st.Status.Conditions)
	}
}

func TestNamespaceConditionsNotRewrittenWhenUnchanged(t *testing.T) {
	c, fake, _ := newController(t, terminating("a"), &corev1.Pod{ObjectMeta: objMeta("a", "p", "example.com/keep")})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := c.sync(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, a := range fake.Actions() {
		if a.Verb == "update-status" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("status written %d times: %s", n, verbs(fake))
	}
}
