package apiclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Client is the controllers' write seam, so they can run in the agent.
var _ controller.Client = (*Client)(nil)

func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name, "ns": ns}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func TestCRUDRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "crud")

	obj, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}, Data: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	created := obj.(*corev1.ConfigMap)
	if created.UID == "" || created.ResourceVersion == "" || created.Data["a"] != "1" {
		t.Fatalf("created %+v", created)
	}
	if created.Kind != "ConfigMap" || created.APIVersion != "v1" {
		t.Errorf("created object has apiVersion %q kind %q", created.APIVersion, created.Kind)
	}

	// Get replaces whatever the object held.
	got := &corev1.ConfigMap{Data: map[string]string{"stale": "x"}}
	if err := c.Get(ctx, got, ns, "cm"); err != nil {
		t.Fatal(err)
	}
	if got.UID != created.UID || len(got.Data) != 1 || got.Data["a"] != "1" {
		t.Fatalf("got %+v", got)
	}

	got.Data["a"] = "2"
	obj, err = c.Update(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	updated := obj.(*corev1.ConfigMap)
	if updated.Data["a"] != "2" || updated.ResourceVersion == got.ResourceVersion {
		t.Fatalf("updated %+v", updated)
	}

	// A cluster-scoped kind has no namespace in its path.
	if _, err := c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "crud-node"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, &corev1.Node{}, "", "crud-node"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "crud-node"}}, nil); err != nil {
		t.Fatal(err)
	}

	// A kind of a named group lives under /apis/GROUP/VERSION.
	holder := "node-a"
	obj, err = c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "node-a"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}})
	if err != nil {
		t.Fatal(err)
	}
	lease := obj.(*coordinationv1.Lease)
	if lease.APIVersion != "coordination.k8s.io/v1" || lease.Kind != "Lease" {
		t.Errorf("lease has apiVersion %q kind %q", lease.APIVersion, lease.Kind)
	}
	now := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))
	lease.Spec.RenewTime = &now
	if obj, err = c.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if got := obj.(*coordinationv1.Lease); got.Spec.RenewTime == nil || !got.Spec.RenewTime.Equal(&now) {
		t.Fatalf("renewed lease: %+v", got.Spec)
	}
	if n := len(srv.requestsWith("PUT /apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/node-a")); n != 1 {
		t.Fatalf("%d lease updates at the group path", n)
	}

	zero := int64(0)
	if err := c.Delete(ctx, updated, &metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, &corev1.ConfigMap{}, ns, "cm"); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestErrorsMapToStatusErrors(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "errors")
	first, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}})
	if err != nil {
		t.Fatal(err)
	}
	bumped := first.(*corev1.ConfigMap).DeepCopy()
	bumped.Data = map[string]string{"x": "y"}
	if _, err := c.Update(ctx, bumped); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
		is   func(error) bool
	}{
		{"get missing", func() error { return c.Get(ctx, &corev1.ConfigMap{}, ns, "missing") }, apierrors.IsNotFound},
		{"delete missing", func() error {
			return c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"}}, nil)
		}, apierrors.IsNotFound},
		{"create existing", func() error {
			_, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}})
			return err
		}, apierrors.IsAlreadyExists},
		{"update stale resourceVersion", func() error {
			old := first.(*corev1.ConfigMap).DeepCopy()
			old.Data = map[string]string{"z": "1"}
			_, err := c.Update(ctx, old)
			return err
		}, apierrors.IsConflict},
		{"invalid object", func() error {
			_, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "Not_Valid"}})
			return err
		}, apierrors.IsInvalid},
		{"forbidden user", func() error {
			return clientAs(t, "system:node:other", "system:nodes").Get(ctx, &corev1.ConfigMap{}, ns, "cm")
		}, apierrors.IsForbidden},
		{"no credentials", func() error {
			return clientAs(t, "").Get(ctx, &corev1.ConfigMap{}, ns, "cm")
		}, apierrors.IsUnauthorized},
		{"server error without a Status body", func() error {
			srv.failNext("GET /api/v1/namespaces/"+ns+"/configmaps/cm", 1)
			return c.Get(ctx, &corev1.ConfigMap{}, ns, "cm")
		}, apierrors.IsInternalError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !tt.is(err) {
				t.Fatalf("error %T %v", err, err)
			}
			if _, ok := err.(*apierrors.StatusError); !ok {
				t.Fatalf("error is %T, want *apierrors.StatusError", err)
			}
		})
	}
}

func TestTransportAndClientErrorsNameTheRequest(t *testing.T) {
	ctx := context.Background()
	// A client that does not trust the server's CA.
	c, err := New(Config{Server: srv.url, TLS: &tls.Config{MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Get(ctx, &corev1.ConfigMap{}, "default", "x")
	if err == nil || !strings.Contains(err.Error(), "GET /api/v1/namespaces/default/configmaps/x") {
		t.Fatalf("untrusted server: %v", err)
	}
	if _, err := New(Config{Server: "127.0.0.1:6443"}); err == nil {
		t.Fatal("a server address without a scheme was accepted")
	}
	a := admin(t)
	if err := a.Get(ctx, &corev1.ConfigMap{}, "", "x"); err == nil {
		t.Fatal("get of a namespaced object without a namespace was accepted")
	}
	if err := a.Get(ctx, &corev1.ConfigMap{}, "default", "../secrets/x"); err == nil || !strings.Contains(err.Error(), "invalid path segment") {
		t.Fatalf("get of a name with a slash: %v", err)
	}
	type notServed struct{ corev1.Pod }
	if err := a.Get(ctx, &notServed{}, "default", "x"); err == nil || !strings.Contains(err.Error(), "no kind") {
		t.Fatalf("get of an unserved type: %v", err)
	}
}

func TestPatchAndUpdateStatus(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "patch")
	obj, err := c.Create(ctx, pod(ns, "p"))
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*corev1.Pod)

	p.Status.Phase = corev1.PodPending
	p.Spec.Containers[0].Image = "ignored-by-status"
	obj, err = c.UpdateStatus(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.(*corev1.Pod); got.Status.Phase != corev1.PodPending || got.Spec.Containers[0].Image != "busybox" {
		t.Fatalf("after UpdateStatus: phase %q image %q", got.Status.Phase, got.Spec.Containers[0].Image)
	}

	tests := []struct {
		name  string
		pt    types.PatchType
		patch string
		sub   string
		check func(*corev1.Pod) bool
	}{
		{"merge patch of status", types.MergePatchType, `{"status":{"phase":"Running","podIP":"10.42.0.9"}}`, "status",
			func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && p.Status.PodIP == "10.42.0.9" }},
		{"status patch leaves the spec alone", types.MergePatchType, `{"metadata":{"labels":{"app":"p"}},"spec":{"activeDeadlineSeconds":5}}`, "status",
			func(p *corev1.Pod) bool { return p.Spec.ActiveDeadlineSeconds == nil }},
		{"strategic merge of conditions", types.StrategicMergePatchType,
			`{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`, "status",
			func(p *corev1.Pod) bool {
				return len(p.Status.Conditions) == 1 && p.Status.Conditions[0].Type == corev1.PodReady
			}},
		{"json patch of labels", types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/tier","value":"web"}]`, "",
			func(p *corev1.Pod) bool { return p.Labels["tier"] == "web" && p.Labels["app"] == "p" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.Patch(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}}, tt.pt, []byte(tt.patch), tt.sub)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := out.(*corev1.Pod)
			if !ok {
				t.Fatalf("patch returned %T", out)
			}
			if !tt.check(got) {
				t.Fatalf("patched pod: %+v", got)
			}
			fresh := &corev1.Pod{}
			if err := c.Get(ctx, fresh, ns, "p"); err != nil {
				t.Fatal(err)
			}
			if !tt.check(fresh) {
				t.Fatalf("stored pod: %+v", fresh)
			}
		})
	}

	if _, err := c.Patch(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"}},
		types.MergePatchType, []byte(`{}`), "status"); !apierrors.IsNotFound(err) {
		t.Fatalf("patch of a missing pod: %v", err)
	}
}

func TestBindAndListByNodeName(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	ns := namespace(t, c, "bind")
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.Create(ctx, pod(ns, name)); err != nil {
			t.Fatal(err)
		}
	}
	a := &corev1.Pod{}
	if err := c.Get(ctx, a, ns, "a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(ctx, a, "node-a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind(ctx, a, "node-b"); !apierrors.IsConflict(err) {
		t.Fatalf("second bind: %v", err)
	}
	// The binding carries the UID: a pod of another UID is not bound.
	b := pod(ns, "b")
	b.UID = "not-the-uid"
	if err := c.Bind(ctx, b, "node-a"); !apierrors.IsConflict(err) {
		t.Fatalf("bind with a stale UID: %v", err)
	}

	tests := []struct {
		selector string
		want     []string
	}{
		{"spec.nodeName=node-a", []string{"a"}},
		{"spec.nodeName=", []string{"b", "c"}},
		{"spec.nodeName=node-b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			list := &corev1.PodList{Items: []corev1.Pod{*pod("stale", "stale")}}
			if err := c.List(ctx, list, ns, metav1.ListOptions{FieldSelector: tt.selector}); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range list.Items {
				names = append(names, p.Name)
				if p.Kind != "Pod" {
					t.Errorf("item %s has kind %q", p.Name, p.Kind)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("listed %v, want %v", names, tt.want)
			}
			if list.ResourceVersion == "" {
				t.Fatal("list has no resourceVersion")
			}
		})
	}

	// All namespaces, with a label selector.
	all := &corev1.PodList{}
	if err := c.List(ctx, all, "", metav1.ListOptions{LabelSelector: "app=c,ns=" + ns}); err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 1 || all.Items[0].Namespace != ns {
		t.Fatalf("listed %d pods across namespaces", len(all.Items))
	}
}

func TestWatchStreamsTypedEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := admin(t)
	ns := namespace(t, c, "watch")
	list := &corev1.ConfigMapList{}
	if err := c.List(ctx, list, ns, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(ctx, &corev1.ConfigMap{}, ns, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if q := srv.requestsWith("GET /api/v1/namespaces/" + ns + "/configmaps"); len(q) != 2 || !strings.Contains(q[1], "watch=true") || !strings.Contains(q[1], "timeoutSeconds=") {
		t.Fatalf("watch requests: %v", q)
	}
	obj, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "w"}})
	if err != nil {
		t.Fatal(err)
	}
	cm := obj.(*corev1.ConfigMap)
	cm.Data = map[string]string{"k": "v"}
	if _, err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, cm, nil); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ  watch.EventType
		data string
	}{{watch.Added, ""}, {watch.Modified, "v"}, {watch.Deleted, "v"}}
	for _, w := range want {
		ev := next(t, ch)
		got, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != w.typ || !ok || got.Name != "w" || got.Data["k"] != w.data || got.Kind != "ConfigMap" {
			t.Fatalf("event %s %#v, want %s with data %q", ev.Type, ev.Object, w.typ, w.data)
		}
	}
	cancel()
	for range ch {
	}
}

func TestWatchSendsInitialEventsAndBookmark(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := admin(t)
	ns := namespace(t, c, "bookmark")
	if _, err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "one"}}); err != nil {
		t.Fatal(err)
	}
	yes := true
	ch, err := c.Watch(ctx, &corev1.ConfigMap{}, ns, metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "one" {
		t.Fatalf("first event %s %#v", ev.Type, ev.Object)
	}
	ev := next(t, ch)
	bm, ok := ev.Object.(*corev1.ConfigMap)
	if ev.Type != watch.Bookmark || !ok || bm.ResourceVersion == "" || bm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("second event %s %#v, want the initial-events-end bookmark", ev.Type, ev.Object)
	}
}

func TestWatchRefusedAndErrorEvents(t *testing.T) {
	ctx := context.Background()
	c := admin(t)
	// An invalid request fails at once with the server's Status.
	_, err := c.Watch(ctx, &corev1.ConfigMap{}, "default", metav1.ListOptions{ResourceVersion: "not-a-number"})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("watch with a bad resourceVersion: %v", err)
	}
	// A stream that ends is a closed channel, not an error.
	short := int64(1)
	ch, err := c.Watch(ctx, &corev1.ConfigMap{}, "default", metav1.ListOptions{TimeoutSeconds: &short})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-deadline:
			t.Fatal("watch with timeoutSeconds=1 did not end")
		}
	}
}

func TestRaw(t *testing.T) {
	c := admin(t)
	data, err := c.Raw(context.Background(), "GET", "/version", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("version: %v: %s", err, data)
	}
	data, err = c.Raw(context.Background(), "GET", "/api/v1/namespaces?labelSelector=none%3Dsuch", nil, "")
	if err != nil || !strings.Contains(string(data), `"NamespaceList"`) || strings.Contains(string(data), `"default"`) {
		t.Fatalf("raw list: %v %s", err, data)
	}
	if _, err := c.Raw(context.Background(), "GET", "/api/v1/namespaces/nope", nil, ""); !apierrors.IsNotFound(err) {
		t.Fatalf("raw get of a missing namespace: %v", err)
	}
}

// next receives one event or fails the test after a deadline.
func next(t *testing.T, ch <-chan watch.Event) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func TestRequestsShareOneHTTP2Connection(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := admin(t)
	c.agent = "mizzen-agent/test (node " + namespace(t, c, "shared") + ")"
	for range 3 {
		if _, err := c.Watch(ctx, &corev1.Pod{}, "default", metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.List(ctx, &corev1.PodList{}, "default", metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	conns := srv.connections(c.agent)
	if len(conns) != 4 {
		t.Fatalf("requests: %v", conns)
	}
	for _, conn := range conns {
		if conn != conns[0] || !strings.HasPrefix(conn, "HTTP/2.0 ") {
			t.Fatalf("requests did not share one HTTP/2 connection: %v", conns)
		}
	}
}

func TestTimeoutBoundsRequestsButNotWatches(t *testing.T) {
	ctx := context.Background()
	a := admin(t)
	ns := namespace(t, a, "timeout")
	srv.stall("GET /api/v1/namespaces/" + ns + "/configmaps/slow")
	c, err := New(Config{Server: srv.url, TLS: a.http.Transport.(*http.Transport).TLSClientConfig, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// A watch started before a request times out outlives it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := c.Watch(wctx, &corev1.ConfigMap{}, ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Get(ctx, &corev1.ConfigMap{}, ns, "slow")
	if err == nil || !strings.Contains(err.Error(), "GET /api/v1/namespaces/"+ns+"/configmaps/slow") {
		t.Fatalf("stalled get: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Fatalf("stalled get took %v with a 300ms timeout", d)
	}
	if _, err := a.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"}}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "late" {
		t.Fatalf("event %s %#v", ev.Type, ev.Object)
	}
}
