package controller

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/cache"
)

func cm(ns, name string, lbl map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}}
}

func TestWatchEnqueuesAndWorkersRetry(t *testing.T) {
	res := cache.NewMemory("configmaps", nil)
	res.Put(cm("a", "one", nil))
	q := NewQueue("test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go Watch(ctx, res, EnqueueHandler(q))
	var calls atomic.Int32
	seen := make(chan string, 10)
	go Run(ctx, q, 2, logrus.NewEntry(logrus.New()), func(_ context.Context, key string) error {
		if key == "a/one" && calls.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		seen <- key
		return nil
	})
	want := map[string]bool{"a/one": true, "b/two": true}
	res.Put(cm("b", "two", nil))
	for len(want) > 0 {
		select {
		case k := <-seen:
			delete(want, k)
		case <-ctx.Done():
			t.Fatalf("keys never synced: %v", want)
		}
	}
	if calls.Load() < 2 {
		t.Fatalf("failed sync was not retried (%d calls)", calls.Load())
	}
}

func TestListerFiltersByNamespaceAndLabels(t *testing.T) {
	res := cache.NewMemory("configmaps", nil)
	res.Put(cm("a", "x", map[string]string{"app": "web"}))
	res.Put(cm("a", "y", map[string]string{"app": "db"}))
	res.Put(cm("b", "z", map[string]string{"app": "web"}))
	l := Lister[*corev1.ConfigMap]{Res: res}
	if got := l.List("a", nil); len(got) != 2 {
		t.Fatalf("namespace a: %d", len(got))
	}
	if got := l.List("", labels.SelectorFromSet(labels.Set{"app": "web"})); len(got) != 2 {
		t.Fatalf("app=web: %d", len(got))
	}
	if o, ok := l.Get("b", "z"); !ok || o.Name != "z" || o.ResourceVersion == "" {
		t.Fatalf("get: %v %v", o, ok)
	}
	res.Remove("b", "z")
	if _, ok := l.Get("b", "z"); ok {
		t.Fatal("removed object still listed")
	}
}

func TestSplitKey(t *testing.T) {
	if ns, n := SplitKey("a/b"); ns != "a" || n != "b" {
		t.Fatal(ns, n)
	}
	if ns, n := SplitKey("node1"); ns != "" || n != "node1" {
		t.Fatal(ns, n)
	}
}

func TestRecorderCountsRepeatedEvents(t *testing.T) {
	res := MemoryResources{}
	fake := &countingClient{res: res}
	r := &Recorder{Client: fake, Component: "test"}
	obj := cm("a", "x", nil)
	obj.UID = "uid-1"
	for i := 0; i < 3; i++ {
		r.Eventf(context.Background(), obj, corev1.EventTypeWarning, "Failed", "it failed %d times", 1)
	}
	r.Eventf(context.Background(), obj, corev1.EventTypeWarning, "Failed", "another message")
	if fake.creates != 2 || fake.updates != 2 || fake.last.Count != 3 {
		t.Fatalf("creates %d updates %d last count %d", fake.creates, fake.updates, fake.last.Count)
	}
}

// countingClient records event writes.
type countingClient struct {
	Client
	res              MemoryResources
	creates, updates int
	last             *corev1.Event
}

func (c *countingClient) Create(_ context.Context, obj runtime.Object) (runtime.Object, error) {
	c.creates++
	return obj, nil
}

func (c *countingClient) Update(_ context.Context, obj runtime.Object) (runtime.Object, error) {
	c.updates++
	c.last = obj.(*corev1.Event)
	return obj, nil
}
