package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// TestClientGoInformerAndTypedClient drives the server the way users'
// controllers do: a typed clientset (protobuf by default) and a shared
// informer factory.
func TestClientGoInformerAndTypedClient(t *testing.T) {
	s := startServer(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace("default"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	var mu sync.Mutex
	seen := map[string]string{}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			cm := obj.(*corev1.ConfigMap)
			mu.Lock()
			seen[cm.Name] = cm.Data["v"]
			mu.Unlock()
		},
		UpdateFunc: func(_, obj interface{}) {
			cm := obj.(*corev1.ConfigMap)
			mu.Lock()
			seen[cm.Name] = cm.Data["v"]
			mu.Unlock()
		},
		DeleteFunc: func(obj interface{}) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				mu.Lock()
				seen[cm.Name] = "deleted"
				mu.Unlock()
			}
		},
	})
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "before"}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer never synced")
	}
	want := func(name, v string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if seen[name] != v {
				return fmt.Errorf("informer has %s=%q, want %q", name, seen[name], v)
			}
			return nil
		})
	}
	want("before", "0")

	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "after"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want("after", "1")
	cm.Data["v"] = "2"
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want("after", "2")
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "after", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want("after", "deleted")

	list, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "before" {
		t.Fatalf("list: %+v", list.Items)
	}
	// A stale update through the typed client gets a conflict.
	stale := list.Items[0].DeepCopy()
	stale.Data["v"] = "x"
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, stale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale.Data["v"] = "y"
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, stale, metav1.UpdateOptions{}); err == nil {
		t.Fatal("stale update through client-go accepted")
	}
	// Lists across namespaces and of the bootstrap objects work too.
	svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.43.0.1" {
		t.Fatalf("kubernetes service: %v %v", svc, err)
	}
}
