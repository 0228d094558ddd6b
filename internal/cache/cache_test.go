package cache_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

var ds *datastore.Datastore

func TestMain(m *testing.M) { etcdtest.Main(m, &ds) }

func decodeCM(kv storage.KV) (runtime.Object, error) {
	cm := &corev1.ConfigMap{}
	if err := json.Unmarshal(kv.Value, cm); err != nil {
		return nil, err
	}
	cm.ResourceVersion = strconv.FormatInt(kv.Revision, 10)
	return cm, nil
}

func cmJSON(ns, name string, labels map[string]string) []byte {
	b, _ := json.Marshal(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}})
	return b
}

// startCache runs a cache of a resource named after the test.
func startCache(t *testing.T) (*cache.Resource, *storage.Store, schema.GroupResource) {
	t.Helper()
	st := storage.New(ds.Client)
	gr := schema.GroupResource{Group: "test", Resource: "r" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	c := cache.New(st, []cache.Spec{{Resource: gr, Decode: decodeCM}}, logrus.NewEntry(logrus.New()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	return c.Resource(gr), st, gr
}

func put(t *testing.T, st *storage.Store, gr schema.GroupResource, ns, name string, labels map[string]string) int64 {
	t.Helper()
	rev, err := st.Create(context.Background(), storage.Key(gr.Group, gr.Resource, ns, name), cmJSON(ns, name, labels))
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestConsistentReadWaitsForWrites(t *testing.T) {
	res, st, gr := startCache(t)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		put(t, st, gr, "a", "cm"+strconv.Itoa(i), nil)
		rev, _ := st.Revision(ctx)
		if err := res.WaitForRevision(ctx, rev); err != nil {
			t.Fatal(err)
		}
		objs, _ := res.List("namespace", "a")
		if len(objs) != i+1 {
			t.Fatalf("after %d writes the cache lists %d", i+1, len(objs))
		}
	}
}

func TestConsistentReadAfterOtherResourcesWrite(t *testing.T) {
	res, _, _ := startCache(t)
	_, other, ogr := startCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	put(t, other, ogr, "x", "y", nil)
	rev, _ := other.Revision(ctx)
	// No event of res reaches this revision: a progress notification must.
	if err := res.WaitForRevision(ctx, rev); err != nil {
		t.Fatalf("cache never caught up with a revision of another resource: %v", err)
	}
}

func TestIndexesFollowChanges(t *testing.T) {
	st := storage.New(ds.Client)
	gr := schema.GroupResource{Group: "test", Resource: "indexed"}
	byLabel := func(obj runtime.Object) []string {
		var out []string
		for k, v := range obj.(*corev1.ConfigMap).Labels {
			out = append(out, k+"="+v)
		}
		return out
	}
	c := cache.New(st, []cache.Spec{{Resource: gr, Decode: decodeCM, Indexes: map[string]cache.IndexFunc{"labels": byLabel}}}, logrus.NewEntry(logrus.New()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.WaitSynced(ctx)
	res := c.Resource(gr)
	rev := put(t, st, gr, "n", "a", map[string]string{"app": "x"})
	put(t, st, gr, "n", "b", map[string]string{"app": "y"})
	key := storage.Key(gr.Group, gr.Resource, "n", "a")
	rev, _, err := st.Update(ctx, key, cmJSON("n", "a", map[string]string{"app": "y"}), rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WaitForRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if objs, _ := res.List("labels", "app=x"); len(objs) != 0 {
		t.Fatalf("app=x still indexed: %d", len(objs))
	}
	if objs, _ := res.List("labels", "app=y"); len(objs) != 2 {
		t.Fatalf("app=y lists %d, want 2", len(objs))
	}
}

func TestWatchFromRevisionReplaysHistory(t *testing.T) {
	res, st, gr := startCache(t)
	r1 := put(t, st, gr, "n", "a", nil)
	put(t, st, gr, "n", "b", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, _ := st.Revision(ctx)
	res.WaitForRevision(ctx, rev)
	w, err := res.Watch(r1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := <-w.Events()
	if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "b" {
		t.Fatalf("first event after %d: %+v", r1, ev)
	}
	if _, _, err := st.Delete(ctx, storage.Key(gr.Group, gr.Resource, "n", "a"), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.Events():
		if ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).Name != "a" || ev.Prev == nil {
			t.Fatalf("delete event: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no delete event")
	}
	if _, err := res.Watch(1); err != cache.ErrTooOld {
		t.Fatalf("watch from before the cache's history: %v", err)
	}
}

func TestManyWatchersGetEveryChange(t *testing.T) {
	res, st, gr := startCache(t)
	var ws []*cache.Watcher
	for i := 0; i < 500; i++ {
		w, err := res.Watch(0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ws = append(ws, w)
	}
	put(t, st, gr, "n", "a", nil)
	for i, w := range ws {
		select {
		case ev := <-w.Events():
			if ev.Type != watch.Added {
				t.Fatalf("watcher %d: %v", i, ev.Type)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("watcher %d got nothing", i)
		}
	}
}

func TestHistoryKeepsTheLastEventsInOrder(t *testing.T) {
	res, st, gr := startCache(t)
	var revs []int64
	for i := 0; i < 1100; i++ {
		revs = append(revs, put(t, st, gr, "n", "o"+strconv.Itoa(i), nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := res.WaitForRevision(ctx, revs[len(revs)-1]); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Watch(revs[10]); err != cache.ErrTooOld {
		t.Fatalf("watch from an event pushed out of history: %v", err)
	}
	w, err := res.Watch(revs[999])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 1000; i < 1100; i++ {
		ev := <-w.Events()
		if ev.Revision != revs[i] {
			t.Fatalf("event %d: revision %d, want %d", i, ev.Revision, revs[i])
		}
	}
}
