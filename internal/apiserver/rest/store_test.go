package rest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

var (
	store *rest.Store
	reg   *registry.Registry
)

func TestMain(m *testing.M) {
	log := logrus.NewEntry(logrus.New())
	ds, stopEtcd, err := etcdtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reg = kinds.Registry()
	st := storage.New(ds.Client)
	c := cache.New(st, rest.CacheSpecs(reg), log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	c.WaitSynced(ctx)
	store = rest.New(reg, st, c)
	if _, err := store.Create(ctx, kind("", "namespaces"), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, rest.CreateOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cancel()
	<-done
	stopEtcd()
	os.Exit(code)
}

func kind(group, resource string) *registry.Kind {
	for _, k := range reg.Kinds() {
		if k.GVR.Group == group && k.GVR.Resource == resource {
			return k
		}
	}
	panic(resource)
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

func TestStatusAndSpecUpdatesAreSeparate(t *testing.T) {
	ctx := context.Background()
	k := kind("apps", "deployments")
	obj, err := store.Create(ctx, k, "default", deployment("sep"), rest.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := obj.(*appsv1.Deployment)
	if d.Generation != 1 || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Fatalf("created: generation %d, spec %+v", d.Generation, d.Spec)
	}
	// A status update changes status only.
	obj, err = store.Update(ctx, k, "default", "sep", func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*appsv1.Deployment)
		c.Status.Replicas = 7
		c.Spec.Paused = true
		return c, nil
	}, rest.UpdateOptions{Subresource: "status"})
	if err != nil {
		t.Fatal(err)
	}
	d = obj.(*appsv1.Deployment)
	if d.Status.Replicas != 7 || d.Spec.Paused || d.Generation != 1 {
		t.Fatalf("after status update: status %d paused %v generation %d", d.Status.Replicas, d.Spec.Paused, d.Generation)
	}
	// A spec update keeps the status and bumps the generation.
	obj, err = store.Update(ctx, k, "default", "sep", func(cur runtime.Object) (runtime.Object, error) {
		c := cur.(*appsv1.Deployment)
		c.Status.Replicas = 0
		c.Spec.Paused = true
		return c, nil
	}, rest.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d = obj.(*appsv1.Deployment)
	if d.Status.Replicas != 7 || !d.Spec.Paused || d.Generation != 2 {
		t.Fatalf("after spec update: status %d paused %v generation %d", d.Status.Replicas, d.Spec.Paused, d.Generation)
	}
	// A metadata-only change does not bump it.
	obj, err = store.Update(ctx, k, "default", "sep", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*appsv1.Deployment).Labels = map[string]string{"x": "y"}
		return cur, nil
	}, rest.UpdateOptions{})
	if err != nil || obj.(*appsv1.Deployment).Generation != 2 {
		t.Fatalf("label update: %v generation %d", err, obj.(*appsv1.Deployment).Generation)
	}
}

func TestNoOpUpdateKeepsResourceVersion(t *testing.T) {
	ctx := context.Background()
	k := kind("", "configmaps")
	obj, err := store.Create(ctx, k, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "noop"}, Data: map[string]string{"a": "b"}}, rest.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := obj.(*corev1.ConfigMap).ResourceVersion
	obj, err = store.Update(ctx, k, "default", "noop", func(cur runtime.Object) (runtime.Object, error) { return cur, nil }, rest.UpdateOptions{})
	if err != nil || obj.(*corev1.ConfigMap).ResourceVersion != rv {
		t.Fatalf("no-op update: %v, rv %s → %s", err, rv, obj.(*corev1.ConfigMap).ResourceVersion)
	}
}

func TestStaleResourceVersionConflicts(t *testing.T) {
	ctx := context.Background()
	k := kind("", "configmaps")
	obj, _ := store.Create(ctx, k, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "stale"}}, rest.CreateOptions{})
	stale := obj.(*corev1.ConfigMap).DeepCopy()
	if _, err := store.Update(ctx, k, "default", "stale", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data = map[string]string{"v": "1"}
		return cur, nil
	}, rest.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := store.Update(ctx, k, "default", "stale", func(runtime.Object) (runtime.Object, error) {
		stale.Data = map[string]string{"v": "2"}
		return stale, nil
	}, rest.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
}

func TestDryRunCreateStoresNothing(t *testing.T) {
	ctx := context.Background()
	k := kind("", "configmaps")
	obj, err := store.Create(ctx, k, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, rest.CreateOptions{DryRun: true})
	if err != nil || obj.(*corev1.ConfigMap).UID == "" {
		t.Fatalf("dry run: %v", err)
	}
	if _, err := store.Get(ctx, k, "default", "dry"); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run object stored: %v", err)
	}
}

func TestListPagesWithSelectorFromStorage(t *testing.T) {
	ctx := context.Background()
	k := kind("", "secrets")
	for i := 0; i < 9; i++ {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i), Labels: map[string]string{"odd": fmt.Sprint(i%2 == 1)}}}
		if _, err := store.Create(ctx, k, "default", s, rest.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{"odd": "true"}})
	var names []string
	cont := ""
	for pages := 0; ; pages++ {
		res, err := store.List(ctx, k, rest.ListOptions{Namespace: "default", Labels: sel, Limit: 2, Continue: cont})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Items {
			names = append(names, o.(*corev1.Secret).Name)
		}
		if res.Continue == "" {
			break
		}
		if pages > 10 {
			t.Fatal("too many pages")
		}
		cont = res.Continue
	}
	if fmt.Sprint(names) != "[s1 s3 s5 s7]" {
		t.Fatalf("paged list: %v", names)
	}
}

func TestDeleteWithFinalizerMarksThenRemoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := kind("", "configmaps")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fin", Finalizers: []string{"x/y"}}}
	if _, err := store.Create(ctx, k, "default", cm, rest.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := store.Delete(ctx, k, "default", "fin", nil)
	if err != nil || !res.Pending || res.Object.(*corev1.ConfigMap).DeletionTimestamp == nil {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if _, err := store.Update(ctx, k, "default", "fin", func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Finalizers = nil
		return cur, nil
	}, rest.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, k, "default", "fin"); !apierrors.IsNotFound(err) {
		t.Fatalf("object outlived its last finalizer: %v", err)
	}
}

func TestInvalidObjectIsRefusedWithCauses(t *testing.T) {
	k := kind("", "pods")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	_, err := store.Create(context.Background(), k, "default", pod, rest.CreateOptions{})
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Code != 422 || len(st.Status().Details.Causes) == 0 || st.Status().Details.Causes[0].Field != "spec.containers[0].image" {
		t.Fatalf("invalid pod: %v", err)
	}
}

func TestFieldSelectorsUseTheIndex(t *testing.T) {
	ctx := context.Background()
	k := kind("", "pods")
	for i, node := range []string{"n1", "n2", "n1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("idx%d", i)},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := store.Create(ctx, k, "default", pod, rest.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fs := fields.OneTermEqualSelector("spec.nodeName", "n1")
	if idx, val := rest.IndexHint(rest.ListOptions{Fields: fs}); idx != rest.FieldIndex || val != "spec.nodeName=n1" {
		t.Fatalf("index hint %q %q", idx, val)
	}
	res, err := store.List(ctx, k, rest.ListOptions{Namespace: "default", Fields: fs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 2 {
		t.Fatalf("spec.nodeName=n1 listed %d pods, want 2", len(res.Items))
	}
	phase := fields.OneTermEqualSelector("status.phase", "Pending")
	res, err = store.List(ctx, k, rest.ListOptions{Fields: fields.AndSelectors(fs, phase)})
	if err != nil || len(res.Items) != 2 {
		t.Fatalf("nodeName and phase: %d, %v", len(res.Items), err)
	}
}
