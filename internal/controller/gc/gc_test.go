package gc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var configmaps = corev1.Resource("configmaps")

func newController(t *testing.T, objs ...runtime.Object) (*Controller, *controllertest.Fake, controller.MemoryResources) {
	t.Helper()
	res := controller.MemoryResources{}
	fake := controllertest.New(res)
	log := logrus.New()
	log.SetOutput(t.Output())
	log.SetLevel(logrus.DebugLevel)
	c := New(controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(log)})
	c.caughtUp = func(context.Context, *cache.Resource, int64) error { return nil }
	for _, o := range objs {
		switch o.(type) {
		case *corev1.ConfigMap:
			res.Resource(configmaps).Put(o)
		case *corev1.Node:
			res.Resource(corev1.Resource("nodes")).Put(o)
		case *corev1.Namespace:
			res.Resource(corev1.Resource("namespaces")).Put(o)
		default:
			t.Fatalf("unexpected %T", o)
		}
	}
	// What the watches would do: index every object's owners.
	for gr, kr := range c.kinds {
		objs, _ := kr.res.List("", "")
		for _, o := range objs {
			c.handler(gr).Add(o)
		}
	}
	return c, fake, res
}

// cm returns a ConfigMap a/name with uid "u-name", owned by owners.
func cm(name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, UID: types.UID("u-" + name), OwnerReferences: owners}}
}

func deleting(o *corev1.ConfigMap, finalizers ...string) *corev1.ConfigMap {
	now := metav1.Now()
	zero := int64(0)
	o.DeletionTimestamp, o.DeletionGracePeriodSeconds, o.Finalizers = &now, &zero, finalizers
	return o
}

func ref(kind, name string, block bool) metav1.OwnerReference {
	apiVersion := "v1"
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("u-" + name), BlockOwnerDeletion: &block}
}

func actions(f *controllertest.Fake) string {
	var out []string
	for _, a := range f.Actions() {
		s := a.Verb + " " + a.Resource + " " + a.Key
		if a.Verb == "update" {
			if m, ok := a.Object.(metav1.Object); ok {
				s += fmt.Sprintf(" owners=%d finalizers=%v", len(m.GetOwnerReferences()), m.GetFinalizers())
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func TestGarbageCollectorSync(t *testing.T) {
	cases := []struct {
		name    string
		objs    []runtime.Object
		key     string
		actions string
	}{
		{name: "dependent of an existing owner stays",
			objs: []runtime.Object{cm("owner"), cm("dep", ref("ConfigMap", "owner", false))},
			key:  "configmaps|a/dep"},
		{name: "dependent of a gone owner is deleted",
			objs:    []runtime.Object{cm("dep", ref("ConfigMap", "owner", false))},
			key:     "configmaps|a/dep",
			actions: "delete configmaps a/dep"},
		{name: "owner recreated with another uid is gone",
			objs:    []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "owner", UID: "other"}}, cm("dep", ref("ConfigMap", "owner", false))},
			key:     "configmaps|a/dep",
			actions: "delete configmaps a/dep"},
		{name: "a remaining owner keeps the dependent, which drops the gone one",
			objs:    []runtime.Object{cm("o1"), cm("dep", ref("ConfigMap", "o1", false), ref("ConfigMap", "o2", false))},
			key:     "configmaps|a/dep",
			actions: "update configmaps a/dep owners=1 finalizers=[]"},
		{name: "owner of a kind not served is kept",
			objs: []runtime.Object{cm("dep", metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Thing", Name: "t", UID: "u-t"})},
			key:  "configmaps|a/dep"},
		{name: "cluster-scoped owner is found",
			objs: []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u-n1"}}, cm("dep", ref("Node", "n1", false))},
			key:  "configmaps|a/dep"},
		{name: "orphan: dependents lose the reference, then the owner its finalizer",
			objs: []runtime.Object{deleting(cm("owner"), metav1.FinalizerOrphanDependents),
				cm("dep", ref("ConfigMap", "owner", true)), cm("other", ref("ConfigMap", "owner", false), ref("ConfigMap", "x", false))},
			key:     "configmaps|a/owner",
			actions: "update configmaps a/dep owners=0 finalizers=[], update configmaps a/other owners=1 finalizers=[], update configmaps a/owner owners=0 finalizers=[]"},
		{name: "foreground: a blocking dependent is deleted and waited for",
			objs:    []runtime.Object{deleting(cm("owner"), metav1.FinalizerDeleteDependents), cm("dep", ref("ConfigMap", "owner", true))},
			key:     "configmaps|a/owner",
			actions: "delete configmaps a/dep"},
		{name: "foreground: non-blocking dependents do not hold the owner",
			objs:    []runtime.Object{deleting(cm("owner"), metav1.FinalizerDeleteDependents), cm("dep", ref("ConfigMap", "owner", false))},
			key:     "configmaps|a/owner",
			actions: "delete configmaps a/dep, update configmaps a/owner owners=0 finalizers=[]"},
		{name: "foreground: a dependent already going is waited for, not deleted again",
			objs:    []runtime.Object{deleting(cm("owner"), metav1.FinalizerDeleteDependents), deleting(cm("dep", ref("ConfigMap", "owner", true)), "example.com/x")},
			key:     "configmaps|a/owner",
			actions: ""},
		{name: "foreground: no dependents, the finalizer goes",
			objs:    []runtime.Object{deleting(cm("owner"), metav1.FinalizerDeleteDependents, "example.com/x")},
			key:     "configmaps|a/owner",
			actions: "update configmaps a/owner owners=0 finalizers=[example.com/x]"},
		{name: "foreground: a dependent with another owner only drops the reference",
			objs: []runtime.Object{deleting(cm("owner"), metav1.FinalizerDeleteDependents), cm("o2"),
				cm("dep", ref("ConfigMap", "owner", true), ref("ConfigMap", "o2", false))},
			key:     "configmaps|a/owner",
			actions: "update configmaps a/dep owners=1 finalizers=[]"},
		{name: "foreground: a namespace keeps its finalizer while it is emptied",
			objs: []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", UID: "u-ns", DeletionTimestamp: &metav1.Time{Time: time.Now()},
				Finalizers: []string{metav1.FinalizerDeleteDependents}}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}},
			key: "namespaces|ns"},
		{name: "foreground: a finalized namespace loses its finalizer",
			objs: []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", UID: "u-ns", DeletionTimestamp: &metav1.Time{Time: time.Now()},
				Finalizers: []string{metav1.FinalizerDeleteDependents}}}},
			key:     "namespaces|ns",
			actions: "update namespaces ns owners=0 finalizers=[]"},
		{name: "gone object is forgotten",
			key: "configmaps|a/nothing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, fake, _ := newController(t, tc.objs...)
			if err := c.sync(context.Background(), tc.key); err != nil {
				t.Fatal(err)
			}
			if got := actions(fake); got != tc.actions {
				t.Fatalf("actions:\n got %s\nwant %s", got, tc.actions)
			}
		})
	}
}

// TestGarbageCollectorRun drives the controller through its watches: the
// fake's writes reach the memory caches, whose events enqueue the next
// steps.
func TestGarbageCollectorRun(t *testing.T) {
	c, fake, res := newController(t, cm("owner"), cm("dep", ref("ConfigMap", "owner", true)), cm("grandchild", ref("ConfigMap", "dep", true)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	cms := res.Resource(configmaps)
	exists := func(name string) bool { _, ok := cms.Get(cms.Key("a", name)); return ok }
	wait := func(what string, f func() bool) {
		t.Helper()
		for !f() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s never happened; actions: %s", what, actions(fake))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	// Foreground deletion of the owner (marked as the API server marks
	// it): its dependents go before it does.
	o, _ := cms.Get(cms.Key("a", "owner"))
	cms.Put(deleting(o.DeepCopyObject().(*corev1.ConfigMap), metav1.FinalizerDeleteDependents))
	wait("cascade", func() bool { return !exists("owner") && !exists("dep") && !exists("grandchild") })
	got := actions(fake)
	if i, j := strings.Index(got, "delete configmaps a/dep"), strings.Index(got, "update configmaps a/owner"); i < 0 || j < i {
		t.Fatalf("owner finalized before its dependent was deleted: %s", got)
	}

	// Background: removing an owner outright deletes its dependents.
	cms.Put(cm("owner2"))
	cms.Put(cm("dep2", ref("ConfigMap", "owner2", false)))
	cms.Remove("a", "owner2")
	wait("background deletion", func() bool { return !exists("dep2") })

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
