package apiclient

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// recorder collects handler calls as "add ns/name", "update ns/name rv→rv"
// and "delete ns/name".
type recorder struct {
	mu    sync.Mutex
	calls []string // guarded by mu
}

func record[T interface {
	runtime.Object
	metav1.Object
}](r *recorder) Handler[T] {
	return func(old, new T) {
		var zero T
		var s string
		switch {
		case any(old) == any(zero):
			s = "add " + new.GetNamespace() + "/" + new.GetName()
		case any(new) == any(zero):
			s = "delete " + old.GetNamespace() + "/" + old.GetName()
		default:
			s = "update " + new.GetNamespace() + "/" + new.GetName()
		}
		r.mu.Lock()
		r.calls = append(r.calls, s)
		r.mu.Unlock()
	}
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// waitCalls waits until the recorded calls are want.
func (r *recorder) waitCalls(t *testing.T, want ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("handler calls %v", want), func() bool {
		return strings.Join(r.get(), ";") == strings.Join(want, ";")
	})
}

// run starts inf.Run and returns a function that stops it and checks that
// Run returned nil.
func run[T runtime.Object](t *testing.T, inf *Informer[T]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inf.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitSynced[T runtime.Object](t *testing.T, inf *Informer[T]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := inf.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
}

func names[T metav1.Object](objs []T) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return strings.Join(out, ",")
}

func TestInformerSyncsAndReportsPodsBoundToItsNode(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "informer")
	bind := func(name, node string) *corev1.Pod {
		t.Helper()
		obj, err := c.Create(ctx, pod(ns, name))
		if err != nil {
			t.Fatal(err)
		}
		p := obj.(*corev1.Pod)
		if node != "" {
			if err := c.Bind(ctx, p, node); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	bind("before", "node-x")
	bind("elsewhere", "node-y")

	rec := &recorder{}
	inf := NewInformer(c, ns, metav1.ListOptions{FieldSelector: "spec.nodeName=node-x"}, record[*corev1.Pod](rec), testLog(t))
	if inf.HasSynced() {
		t.Fatal("synced before Run")
	}
	run(t, inf)
	waitSynced(t, inf)
	if got := rec.get(); len(got) != 1 || got[0] != "add "+ns+"/before" {
		t.Fatalf("calls at sync: %v", got)
	}

	// Created unbound (not ours), then bound to us: an add.
	p := bind("later", "")
	if err := c.Bind(ctx, p, "node-x"); err != nil {
		t.Fatal(err)
	}
	bind("other", "node-y")
	rec.waitCalls(t, "add "+ns+"/before", "add "+ns+"/later")

	if _, err := c.Patch(ctx, p, "application/merge-patch+json", []byte(`{"status":{"phase":"Running"}}`), "status"); err != nil {
		t.Fatal(err)
	}
	rec.waitCalls(t, "add "+ns+"/before", "add "+ns+"/later", "update "+ns+"/later")
	got, ok := inf.Get(ns, "later")
	if !ok || got.Status.Phase != corev1.PodRunning || got.Kind != "Pod" {
		t.Fatalf("Get later: %v %+v", ok, got)
	}
	if _, ok := inf.Get(ns, "other"); ok {
		t.Fatal("a pod of another node is held")
	}
	if n := names(inf.List()); n != "before,later" {
		t.Fatalf("List: %s", n)
	}

	zero := int64(0)
	if err := c.Delete(ctx, p, &metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	rec.waitCalls(t, "add "+ns+"/before", "add "+ns+"/later", "update "+ns+"/later", "delete "+ns+"/later")
	if _, ok := inf.Get(ns, "later"); ok {
		t.Fatal("deleted pod still held")
	}
}

func TestInformerUpdateHandlerSeesOldAndNew(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "oldnew")
	type change struct{ old, new string }
	var mu sync.Mutex
	var changes []change
	h := func(old, new *corev1.ConfigMap) {
		mu.Lock()
		defer mu.Unlock()
		ch := change{"<nil>", "<nil>"}
		if old != nil {
			ch.old = old.Data["v"]
		}
		if new != nil {
			ch.new = new.Data["v"]
		}
		changes = append(changes, ch)
	}
	inf := NewInformer(c, ns, metav1.ListOptions{}, h, testLog(t))
	run(t, inf)
	waitSynced(t, inf)
	obj, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}, Data: map[string]string{"v": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	cm := obj.(*corev1.ConfigMap)
	cm.Data["v"] = "2"
	if _, err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, cm, nil); err != nil {
		t.Fatal(err)
	}
	want := []change{{"<nil>", "1"}, {"1", "2"}, {"2", "<nil>"}}
	eventually(t, "three changes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(changes) == fmt.Sprint(want)
	})
}

func TestInformerSurvivesTheServerEndingWatches(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "rewatch")
	rec := &recorder{}
	short := int64(1)
	inf := NewInformer(c, ns, metav1.ListOptions{TimeoutSeconds: &short}, record[*corev1.ConfigMap](rec), testLog(t))
	run(t, inf)
	waitSynced(t, inf)
	watches := func() []string {
		var out []string
		for _, r := range srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps?") {
			if strings.Contains(r, "watch=true") {
				out = append(out, r)
			}
		}
		return out
	}
	var want []string
	for n := range 3 {
		// Each change lands in a later watch than the one before.
		before := len(watches())
		eventually(t, "a new watch", func() bool { return len(watches()) > before })
		name := fmt.Sprintf("cm-%d", n)
		if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, "add "+ns+"/"+name)
		rec.waitCalls(t, want...)
	}
	lists := 0
	for _, r := range srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps") {
		if !strings.Contains(r, "watch=true") {
			lists++
		}
	}
	if lists != 1 {
		t.Fatalf("%d lists; re-watching after a server timeout must not relist", lists)
	}
	for _, w := range watches() {
		if !strings.Contains(w, "resourceVersion=") || !strings.Contains(w, "allowWatchBookmarks=true") || !strings.Contains(w, "timeoutSeconds=1") {
			t.Fatalf("watch request %s", w)
		}
	}
}

func TestInformerRetriesFailedLists(t *testing.T) {
	c := admin(t)
	ns := namespace(t, c, "retry")
	inf := NewInformer[*corev1.ConfigMap](c, ns, metav1.ListOptions{}, nil, testLog(t))
	inf.minBackoff, inf.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	srv.failNext("GET /api/v1/namespaces/"+ns+"/configmaps", 3)
	run(t, inf)
	waitSynced(t, inf)
	if n := len(srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps")); n < 4 {
		t.Fatalf("%d list requests, want 3 failures and a success", n)
	}
}

// TestInformerRelistsWhenItsResourceVersionExpired stops an informer,
// changes objects, pushes its resourceVersion out of the API server's
// watch cache and compacts etcd past it, so the resumed watch gets 410
// Gone: the informer relists and reports what changed meanwhile.
func TestInformerRelistsWhenItsResourceVersionExpired(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "relist")
	churn := namespace(t, c, "churn")
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	inf := NewInformer(c, ns, metav1.ListOptions{}, record[*corev1.ConfigMap](rec), testLog(t))
	inf.minBackoff = 10 * time.Millisecond
	stop := run(t, inf)
	waitSynced(t, inf)
	rec.waitCalls(t, "add "+ns+"/a", "add "+ns+"/b", "add "+ns+"/c")
	stop()
	rec.reset()

	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patch(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b"}},
		"application/merge-patch+json", []byte(`{"data":{"k":"v"}}`), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "d"}}); err != nil {
		t.Fatal(err)
	}
	// More configmap events than the watch cache keeps (1024).
	obj, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: churn, Name: "churn"}})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 1100 {
		patch := fmt.Sprintf(`{"data":{"n":"%d"}}`, n)
		if obj, err = c.Patch(ctx, obj, "application/merge-patch+json", []byte(patch), ""); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := srv.ds.Client.Get(ctx, "compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ds.Client.Compact(ctx, rev.Header.Revision); err != nil {
		t.Fatal(err)
	}

	listsBefore := len(srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps"))
	run(t, inf)
	rec.waitCalls(t, "update "+ns+"/b", "add "+ns+"/d", "delete "+ns+"/a")
	if n := names(inf.List()); n != "b,c,d" {
		t.Fatalf("List after relist: %s", n)
	}
	var lists int
	for _, r := range srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps")[listsBefore:] {
		if !strings.Contains(r, "watch=true") {
			lists++
		}
	}
	if lists != 1 {
		t.Fatalf("%d lists after the expired watch, want 1", lists)
	}
}

func TestInformerRelistsAfterAnErrorEvent(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "errorevent")
	rec := &recorder{}
	inf := NewInformer(c, ns, metav1.ListOptions{}, record[*corev1.ConfigMap](rec), testLog(t))
	inf.minBackoff = 10 * time.Millisecond
	path := "GET /api/v1/namespaces/" + ns + "/configmaps"
	srv.errorEvent(path, 1)
	run(t, inf)
	waitSynced(t, inf)
	lists := func() int {
		n := 0
		for _, r := range srv.requestsWith(path) {
			if !strings.Contains(r, "watch=true") {
				n++
			}
		}
		return n
	}
	eventually(t, "a second list after the ERROR event", func() bool { return lists() == 2 })
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "after"}}); err != nil {
		t.Fatal(err)
	}
	rec.waitCalls(t, "add "+ns+"/after")
}
