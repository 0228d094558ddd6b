package deploy

import (
	"context"
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
	return &harness{t: t, ctx: ctx, dir: dir, st: st, store: store,
		ctl: New(Config{Dir: dir, Identity: "server-1", Log: entry}, store)}
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
	if h.configMap("default", "x") != nil {
		t.Error("x still exists after its server's file was removed")
	}
}
