package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// harness is a controller over a real store (etcd, cache, admission-free
// REST store) and a temporary manifests directory.
type harness struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	st    *storage.Store
	store *rest.Store
	ctl   *Controller
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := logrus.New()
	log.SetOutput(t.Output())
	entry := logrus.NewEntry(log)
	// Each test has its own etcd, so tests cannot see each other's objects.
	ds, stop, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	st := storage.New(ds.Client)
	c := cache.New(st, rest.CacheSpecs(kinds.Registry()), entry)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	store := rest.New(kinds.Registry(), st, c)
	for _, ns := range []string{"default", "kube-system"} {
		if _, err := store.Create(ctx, kindOf(store, "namespaces"), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, rest.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	ctl := New(Config{Dir: dir, Identity: "server-1", Log: entry}, store)
	ctl.settle = 0 // files are written whole here
	return &harness{t: t, ctx: ctx, dir: dir, st: st, store: store, ctl: ctl}
}

func kindOf(store *rest.Store, resource string) *registry.Kind {
	k, _ := store.Registry().Lookup(corev1.SchemeGroupVersion.WithResource(resource))
	return k
}

func (h *harness) write(name, data string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(data), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) remove(name string) {
	h.t.Helper()
	if err := os.Remove(filepath.Join(h.dir, name)); err != nil {
		h.t.Fatal(err)
	}
}

// sync runs one pass once the cache has caught up with etcd, as it has
// in a server between two polls.
func (h *harness) sync() {
	h.t.Helper()
	rev, err := h.st.Revision(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range []string{"configmaps", "namespaces", "services"} {
		if err := h.store.Cache().Resource(corev1.Resource(r)).WaitForRevision(h.ctx, rev); err != nil {
			h.t.Fatal(err)
		}
	}
	h.ctl.sync(h.ctx, false)
}

func (h *harness) configMap(ns, name string) *corev1.ConfigMap {
	h.t.Helper()
	obj, err := h.store.Get(h.ctx, kindOf(h.store, "configmaps"), ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return obj.(*corev1.ConfigMap)
}

func (h *harness) events(reason string) []string {
	objs, _ := h.store.Cache().Resource(corev1.Resource("events")).List("", "")
	var out []string
	for _, o := range objs {
		if ev := o.(*corev1.Event); ev.Reason == reason {
			out = append(out, ev.InvolvedObject.Name+": "+ev.Message)
		}
	}
	return out
}

const fileA = `
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: one, namespace: apps}
data: {v: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: two, namespace: apps}
`

func TestFilesAreAppliedUpdatedAndPruned(t *testing.T) {
	h := newHarness(t)
	h.write("a.yaml", fileA)
	h.write("b.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: b}
`)
	h.sync()
	if h.configMap("apps", "one") == nil || h.configMap("apps", "two") == nil || h.configMap("default", "b") == nil {
		t.Fatal("objects of a.yaml and b.yaml not created")
	}
	if cm := h.configMap("apps", "one"); cm.Labels[ManagedLabel] != "true" || cm.Annotations[SourceAnnotation] != "a.yaml" {
		t.Errorf("one: labels %v annotations %v", cm.Labels, cm.Annotations)
	}

	// A user's label survives a change of the file.
	cm := h.configMap("apps", "one")
	cm.Labels["user"] = "kept"
	if _, err := h.store.Update(h.ctx, kindOf(h.store, "configmaps"), "apps", "one", func(runtime.Object) (runtime.Object, error) { return cm, nil }, rest.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.write("a.yaml", strings.Replace(fileA, `v: "1"`, `v: "22"`, 1))
	h.sync()
	if cm := h.configMap("apps", "one"); cm.Data["v"] != "22" || cm.Labels["user"] != "kept" {
		t.Errorf("one after edit: data %v labels %v", cm.Data, cm.Labels)
	}

	// An object dropped from the file is deleted; the rest stay.
	h.write("a.yaml", strings.Split(fileA, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two")[0])
	h.sync()
	if h.configMap("apps", "two") != nil {
		t.Error("two still exists after it was removed from a.yaml")
	}
	if h.configMap("apps", "one") == nil || h.configMap("default", "b") == nil {
		t.Error("objects still in the files were deleted")
	}

	// A removed file's objects are deleted.
	h.remove("a.yaml")
	h.sync()
	h.sync() // missing twice
	if h.configMap("apps", "one") != nil {
		t.Error("one still exists after a.yaml was removed")
	}
	ns, err := h.store.Get(h.ctx, kindOf(h.store, "namespaces"), "", "apps")
	if err == nil && ns.(*corev1.Namespace).DeletionTimestamp == nil {
		t.Error("namespace apps not deleted")
	}
	if h.configMap("default", "b") == nil {
		t.Error("b.yaml's object deleted with a.yaml")
	}
	if ev := h.events("AppliedManifest"); len(ev) < 2 {
		t.Errorf("AppliedManifest events: %q", ev)
	}
}

func TestBadDocumentsAndRefusedObjectsDoNotStopTheRest(t *testing.T) {
	h := newHarness(t)
	h.write("bad.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: [broken
---
apiVersion: v1
kind: ConfigMap
metadata: {name: Not_Valid}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: last}
spec: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: typed}
data: {v: [1]}
`)
	h.write("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n")
	h.sync()
	if h.configMap("default", "first") == nil || h.configMap("default", "good") == nil {
		t.Fatal("valid objects not applied")
	}
	failed := strings.Join(h.events("ApplyManifestFailed"), "\n")
	for _, want := range []string{"document 2", "Not_Valid", `no matches for kind "Widget" in version "example.com/v1"`,
		`ConfigMap default/last (document 5): strict decoding error: unknown field "spec"`, "ConfigMap default/typed (document 6): json: cannot unmarshal array"} {
		if !strings.Contains(failed, want) {
			t.Errorf("ApplyManifestFailed events lack %q:\n%s", want, failed)
		}
	}
	// A file that did not parse completely keeps what it created, even
	// when the object is gone from it.
	h.write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken\n")
	h.sync()
	if h.configMap("default", "first") == nil {
		t.Error("an object of a file that does not parse was deleted")
	}
}

func TestSkippedFilesAreLeftAlone(t *testing.T) {
	h := newHarness(t)
	h.write("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {v: \"1\"}\n")
	h.sync()
	h.write("c.yaml.skip", "")
	h.write("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {v: \"2\"}\n")
	h.sync()
	if cm := h.configMap("default", "c"); cm == nil || cm.Data["v"] != "1" {
		t.Errorf("skipped file applied: %v", cm)
	}
	h.remove("c.yaml")
	h.sync()
	h.sync()
	if h.configMap("default", "c") == nil {
		t.Error("objects of a skipped file deleted")
	}
}

func TestRunStagesAppliesAndBecomesReady(t *testing.T) {
	h := newHarness(t)
	ctl := New(Config{Dir: h.dir, Interval: 10 * time.Millisecond, Log: h.ctl.cfg.Log,
		Bundled: fstest.MapFS{"dns.yaml": {Data: []byte("apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: kube-system}\nspec:\n  clusterIP: %{IP}%\n  ports: [{port: 53, protocol: UDP}]\n")}},
		Vars:    map[string]string{"IP": "10.0.0.10"}}, h.store)
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	select {
	case <-ctl.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	}
	svc, err := h.store.Get(h.ctx, kindOf(h.store, "services"), "kube-system", "dns")
	if err != nil || svc.(*corev1.Service).Spec.ClusterIP != "10.0.0.10" {
		t.Fatalf("bundled service: %v %v", svc, err)
	}
	// A file dropped in later is picked up by polling.
	h.write("late.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\n")
	deadline := time.Now().Add(10 * time.Second)
	for h.configMap("default", "late") == nil {
		if time.Now().After(deadline) {
			t.Fatal("late.yaml not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestServersDeleteOnlyWhatTheyCreated(t *testing.T) {
	h := newHarness(t)
	otherDir := t.TempDir()
	other := New(Config{Dir: otherDir, Identity: "server-2", Log: h.ctl.cfg.Log}, h.store)
	other.settle = 0
	if err := os.WriteFile(filepath.Join(otherDir, "x.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other.sync(h.ctx, false)
	if cm := h.configMap("default", "x"); cm == nil || cm.Annotations[ServerAnnotation] != "server-2" {
		t.Fatalf("x: %v", cm)
	}
	h.sync() // server-1 has no x.yaml
	if h.configMap("default", "x") == nil {
		t.Fatal("a server deleted another server's object")
	}
	if err := os.Remove(filepath.Join(otherDir, "x.yaml")); err != nil {
		t.Fatal(err)
	}
	h.sync() // wait for the cache
	other.sync(h.ctx, false)
	other.sync(h.ctx, false) // missing twice
	if h.configMap("default", "x") != nil {
		t.Error("x still exists after its server's file was removed")
	}
}

// An object over the 256 KiB annotation limit still applies (and updates):
// what was applied is kept compressed, as k3s keeps it.
func TestLargeObjectsApply(t *testing.T) {
	h := newHarness(t)
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "    line %d of a large dashboard\n", i)
	}
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  v: \"1\"\n  dashboard.txt: |\n" + b.String()
	h.write("big.yaml", big)
	h.sync()
	cm := h.configMap("default", "big")
	if cm == nil || len(cm.Data["dashboard.txt"]) < 300000 {
		t.Fatalf("large ConfigMap not created: %v", h.events("ApplyManifestFailed"))
	}
	h.write("big.yaml", strings.Replace(big, `v: "1"`, `v: "2"`, 1))
	h.sync()
	if cm := h.configMap("default", "big"); cm == nil || cm.Data["v"] != "2" {
		t.Fatalf("large ConfigMap not updated: %v", h.events("ApplyManifestFailed"))
	}
	// Applying it again without a change writes nothing.
	rv := h.configMap("default", "big").ResourceVersion
	h.ctl.sync(h.ctx, true)
	if got := h.configMap("default", "big").ResourceVersion; got != rv {
		t.Errorf("unchanged large ConfigMap rewritten: resourceVersion %s -> %s", rv, got)
	}
}

// A file caught half-written (just modified) or briefly missing (an
// editor replacing it) deletes nothing: it is applied once it has settled,
// and its objects go only when it stays missing.
func TestHalfWrittenAndBrieflyMissingFilesDeleteNothing(t *testing.T) {
	h := newHarness(t)
	h.ctl.settle = time.Second
	aged := func(name, data string, age time.Duration) {
		h.write(name, data)
		old := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(h.dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	two := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\n"
	aged("a.yaml", two, time.Minute)
	h.sync()
	if h.configMap("default", "one") == nil || h.configMap("default", "two") == nil {
		t.Fatal("a.yaml not applied")
	}

	// Caught while written: only the first document is there yet.
	h.write("a.yaml", strings.Split(two, "---")[0])
	h.sync()
	if h.configMap("default", "two") == nil {
		t.Fatal("an object of a file being written was deleted")
	}
	aged("a.yaml", strings.Split(two, "---")[0], 30*time.Second)
	h.sync()
	if h.configMap("default", "two") != nil {
		t.Error("two still exists once the file without it settled")
	}

	// Missing for one pass (renamed away and back by an editor).
	h.remove("a.yaml")
	h.sync()
	if h.configMap("default", "one") == nil {
		t.Fatal("objects deleted on the first pass that missed their file")
	}
	aged("a.yaml", two, 20*time.Second)
	h.sync()
	h.sync()
	if h.configMap("default", "one") == nil || h.configMap("default", "two") == nil {
		t.Fatal("a.yaml not applied after it came back")
	}
	h.remove("a.yaml")
	h.sync()
	h.sync()
	if h.configMap("default", "one") != nil {
		t.Error("objects of a removed file still exist after two passes")
	}
}

// As in k3s, a user's edit of a field the file sets stays until the file
// changes (or the server restarts): files are not re-applied periodically.
func TestUsersEditsStayUntilTheFileChanges(t *testing.T) {
	h := newHarness(t)
	h.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {v: \"1\"}\n")
	ctl := New(Config{Dir: h.dir, Interval: 10 * time.Millisecond, Log: h.ctl.cfg.Log}, h.store)
	ctl.settle = 0
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-ctl.Ready()
	if ctl.cfg.Resync != 0 {
		t.Errorf("files re-applied every %s by default", ctl.cfg.Resync)
	}
	cm := h.configMap("default", "a")
	cm.Data["v"] = "user"
	if _, err := h.store.Update(h.ctx, kindOf(h.store, "configmaps"), "default", "a", func(runtime.Object) (runtime.Object, error) { return cm, nil }, rest.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := func(name, v string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for cm := h.configMap("default", name); cm == nil || cm.Data["v"] != v; cm = h.configMap("default", name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v, want v=%s", name, cm, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Passes go on (a new file is applied) and leave the edit alone.
	h.write("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {v: \"1\"}\n")
	wait("b", "1")
	if cm := h.configMap("default", "a"); cm.Data["v"] != "user" {
		t.Errorf("user's edit undone: v=%s", cm.Data["v"])
	}
	h.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {v: \"2\"}\n")
	wait("a", "2")
}

// A server whose identity changed (a new host name, a restore onto a new
// host) takes over the objects its files give, and deletes them when the
// files go.
func TestObjectsOfARenamedServerAreTakenOver(t *testing.T) {
	h := newHarness(t)
	h.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	before := New(Config{Dir: h.dir, Identity: "old-name_1234", Log: h.ctl.cfg.Log}, h.store)
	before.settle = 0
	before.sync(h.ctx, true)
	if cm := h.configMap("default", "a"); cm == nil || cm.Annotations[ServerAnnotation] != "old-name_1234" {
		t.Fatalf("a: %v", cm)
	}
	h.ctl.sync(h.ctx, true) // the server starts again under its new name
	if cm := h.configMap("default", "a"); cm == nil || cm.Annotations[ServerAnnotation] != "server-1" {
		t.Fatalf("a not taken over: %v", cm)
	}
	h.remove("a.yaml")
	h.sync()
	h.sync()
	if h.configMap("default", "a") != nil {
		t.Error("a still exists after its file was removed")
	}
}
