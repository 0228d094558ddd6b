package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	res  controller.MemoryResources
	fake *controllertest.Fake
	c    *Controller
	now  time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	res := controller.MemoryResources{}
	// MemoryResources creates a resource on first use without a lock:
	// create every resource the controller's parallel writes reach first.
	for _, gr := range []schema.GroupResource{rsResource, podResource, {Resource: "events"}} {
		res.Resource(gr)
	}
	fake := controllertest.New(res)
	log := logrus.New()
	log.SetOutput(t.Output())
	log.SetLevel(logrus.DebugLevel)
	h := &harness{res: res, fake: fake, now: t0}
	h.c = New(controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(log)})
	h.c.now = func() time.Time { return h.now }
	t.Cleanup(h.c.queue.ShutDown)
	return h
}

func newRS(name string, n int32) *appsv1.ReplicaSet {
	lbl := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

// pod returns a pod of rs (owned, with its template labels) unless
// changed by opts.
func pod(rs *appsv1.ReplicaSet, name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: name, UID: types.UID("uid-" + name),
			Labels: copyMap(rs.Spec.Template.Labels), OwnerReferences: []metav1.OwnerReference{*ownerRef(rs)},
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func orphan(p *corev1.Pod) { p.OwnerReferences = nil }
func onNode(n string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.NodeName = n }
}
func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func readySince(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)}}
	}
}
func created(t time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t) }
}
func restarts(n int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}
func deleting(p *corev1.Pod) {
	now := metav1.NewTime(t0)
	p.DeletionTimestamp = &now
	p.Finalizers = []string{"test/keep"}
}
func withLabels(l map[string]string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels = l }
}

func (h *harness) pods() controller.Lister[*corev1.Pod] { return h.c.pods }

func (h *harness) add(rs *appsv1.ReplicaSet, pods ...*corev1.Pod) {
	h.res.Resource(rsResource).Put(rs)
	for _, p := range pods {
		h.res.Resource(podResource).Put(p)
	}
}

func (h *harness) sync(t *testing.T, rs *appsv1.ReplicaSet) error {
	t.Helper()
	return h.c.sync(context.Background(), controller.Key(rs))
}

// writes returns the recorded writes of verb on resource.
func (h *harness) writes(verb, resource string) []controllertest.Action {
	var out []controllertest.Action
	for _, a := range h.fake.Actions() {
		if a.Verb == verb && a.Resource == resource {
			out = append(out, a)
		}
	}
	return out
}

func (h *harness) events() []string {
	var out []string
	for _, a := range h.writes("create", "events") {
		e := a.Object.(*corev1.Event)
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func (h *harness) rsNow(t *testing.T, rs *appsv1.ReplicaSet) *appsv1.ReplicaSet {
	t.Helper()
	got, ok := h.c.rs.Get(rs.Namespace, rs.Name)
	if !ok {
		t.Fatalf("replicaset %s gone", rs.Name)
	}
	return got
}

func TestScaleUpCreatesMissingPodsFromTemplate(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 5)
	h.add(rs, pod(rs, "web-a"), pod(rs, "web-b"))
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	creates := h.writes("create", "pods")
	if len(creates) != 3 {
		t.Fatalf("created %d pods, want 3", len(creates))
	}
	for _, a := range creates {
		p := a.Object.(*corev1.Pod)
		if !strings.HasPrefix(p.Name, "web-") || p.Labels["tier"] != "web" || p.Spec.Containers[0].Image != "busybox" {
			t.Errorf("pod not from template: %s %v", p.Name, p.Labels)
		}
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s owner reference: %+v", p.Name, p.OwnerReferences)
		}
	}
	ev := h.events()
	if len(ev) != 3 || !strings.HasPrefix(ev[0], "SuccessfulCreate: Created pod: web-") {
		t.Errorf("events: %q", ev)
	}
	// Status counts the pods the sync saw; the new pods' events bring the
	// next sync, which counts them.
	if st := h.rsNow(t, rs).Status; st.Replicas != 2 || st.ObservedGeneration != 1 {
		t.Errorf("status after creating: %+v", st)
	}
	if err := h.sync(t, h.rsNow(t, rs)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.writes("create", "pods")); n != 3 {
		t.Errorf("second sync created %d more pods", n-3)
	}
	if st := h.rsNow(t, rs).Status; st.Replicas != 5 || st.FullyLabeledReplicas != 5 {
		t.Errorf("status after creating: %+v", st)
	}
}

func TestSlowStartBatchesDoubleAndStopOnFailure(t *testing.T) {
	for _, tc := range []struct {
		count, failAt, wantCalls, wantDone int
	}{
		{count: 10, failAt: -1, wantCalls: 10, wantDone: 10},
		{count: 10, failAt: 0, wantCalls: 1, wantDone: 0},
		{count: 10, failAt: 2, wantCalls: 3, wantDone: 2}, // batches 1, 2: the second fails
		{count: 10, failAt: 4, wantCalls: 7, wantDone: 4}, // batches 1, 2, 4: the third fails
		{count: 0, failAt: -1, wantCalls: 0, wantDone: 0},
	} {
		calls := make(chan int, 100)
		n := 0
		done, err := slowStartBatch(tc.count, func() error {
			calls <- 1
			return nil
		})
		close(calls)
		for range calls {
			n++
		}
		if tc.failAt < 0 && (err != nil || done != tc.wantDone || n != tc.wantCalls) {
			t.Errorf("count %d: done %d calls %d err %v", tc.count, done, n, err)
		}
		if tc.failAt < 0 {
			continue
		}
		// Fail every call from the failAt-th on: batches run in parallel,
		// so a batch's failures are whole batches here.
		var i int
		var mu = make(chan struct{}, 1)
		done, err = slowStartBatch(tc.count, func() error {
			mu <- struct{}{}
			defer func() { <-mu }()
			i++
			if i > tc.failAt {
				return errors.New("quota")
			}
			return nil
		})
		if err == nil || done != tc.wantDone || i != tc.wantCalls {
			t.Errorf("count %d fail at %d: done %d calls %d err %v", tc.count, tc.failAt, done, i, err)
		}
	}
}

func TestExpectationsPreventDuplicateCreates(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 3)
	h.add(rs)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	created := h.writes("create", "pods")
	if len(created) != 3 {
		t.Fatalf("created %d", len(created))
	}
	// The cache has not shown the new pods yet.
	for _, a := range created {
		p := a.Object.(*corev1.Pod)
		h.res.Resource(podResource).Remove(p.Namespace, p.Name)
	}
	h.fake.Reset()
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	if n := len(h.writes("create", "pods")); n != 0 {
		t.Fatalf("a sync before the cache showed the creations created %d more pods", n)
	}
	// The watch shows them: expectations are met, and nothing is missing.
	for _, a := range created {
		p := a.Object.(*corev1.Pod)
		h.res.Resource(podResource).Put(p)
		h.c.addPod(p)
	}
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	if n := len(h.writes("create", "pods")); n != 0 {
		t.Fatalf("created %d pods with all replicas present", n)
	}
	// An expectation older than the timeout no longer blocks.
	h.c.exp.expectCreations(controller.Key(rs), 2)
	h.now = h.now.Add(expectationsTimeout + time.Second)
	h.res.Resource(podResource).Remove("default", created[0].Object.(*corev1.Pod).Name)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	if n := len(h.writes("create", "pods")); n != 1 {
		t.Fatalf("after the expectations expired created %d pods, want 1", n)
	}
}

func TestExpectedDeletionsCountOnce(t *testing.T) {
	e := newExpectations(func() time.Time { return t0 })
	e.expectDeletions("ns/rs", []string{"ns/a", "ns/b"})
	e.deletionObserved("ns/rs", "ns/a")
	e.deletionObserved("ns/rs", "ns/a") // terminating, then gone
	if e.satisfied("ns/rs") {
		t.Fatal("satisfied with ns/b still expected to go")
	}
	e.deletionObserved("ns/rs", "ns/b")
	if !e.satisfied("ns/rs") {
		t.Fatal("not satisfied after both deletions")
	}
}

func TestScaleDownDeletesLeastValuableFirst(t *testing.T) {
	rs := newRS("web", 0)
	ready := readySince(t0.Add(-time.Hour))
	for _, tc := range []struct {
		name     string
		pods     []*corev1.Pod
		wantGone string
	}{
		{"unassigned before assigned", []*corev1.Pod{pod(rs, "assigned", onNode("n1")), pod(rs, "unassigned")}, "unassigned"},
		{"pending before running", []*corev1.Pod{pod(rs, "running", onNode("n1"), phase(corev1.PodRunning)), pod(rs, "pending", onNode("n1"))}, "pending"},
		{"unknown before running", []*corev1.Pod{pod(rs, "running", onNode("n1"), phase(corev1.PodRunning)), pod(rs, "unknown", onNode("n1"), phase(corev1.PodUnknown))}, "unknown"},
		{"not ready before ready", []*corev1.Pod{pod(rs, "ready", onNode("n1"), ready), pod(rs, "notready", onNode("n1"), phase(corev1.PodRunning))}, "notready"},
		{"lower deletion cost first", []*corev1.Pod{
			pod(rs, "costly", onNode("n1"), ready, func(p *corev1.Pod) { p.Annotations = map[string]string{deletionCostAnnotation: "10"} }),
			pod(rs, "cheap", onNode("n1"), ready, created(t0.Add(-10*time.Hour)))}, "cheap"},
		{"ready for less time first", []*corev1.Pod{pod(rs, "old", onNode("n1"), readySince(t0.Add(-10*time.Hour))), pod(rs, "recent", onNode("n1"), readySince(t0.Add(-time.Minute)))}, "recent"},
		{"more restarts first", []*corev1.Pod{pod(rs, "stable", onNode("n1"), ready), pod(rs, "crashy", onNode("n1"), ready, restarts(5))}, "crashy"},
		{"newer first", []*corev1.Pod{pod(rs, "older", created(t0.Add(-10*time.Hour))), pod(rs, "newer", created(t0.Add(-time.Minute)))}, "newer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			one := newRS("web", 1)
			h.add(one, tc.pods...)
			if err := h.sync(t, one); err != nil {
				t.Fatal(err)
			}
			dels := h.writes("delete", "pods")
			if len(dels) != 1 || dels[0].Key != "default/"+tc.wantGone {
				t.Fatalf("deleted %v, want default/%s", dels, tc.wantGone)
			}
			if ev := h.events(); len(ev) != 1 || ev[0] != "SuccessfulDelete: Deleted pod: "+tc.wantGone {
				t.Errorf("events %q", ev)
			}
		})
	}
}

func TestScaleDownDeletesTheSurplus(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 2)
	var pods []*corev1.Pod
	for i := range 5 {
		pods = append(pods, pod(rs, fmt.Sprintf("web-%d", i), onNode("n1"), readySince(t0.Add(-time.Hour))))
	}
	pods[3].Spec.NodeName = ""
	h.add(rs, pods...)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, a := range h.writes("delete", "pods") {
		gone = append(gone, a.Key)
	}
	sort.Strings(gone)
	if len(gone) != 3 || gone[0] != "default/web-3" && gone[1] != "default/web-3" && gone[2] != "default/web-3" {
		t.Fatalf("deleted %v, want 3 including the unassigned web-3", gone)
	}
	if err := h.sync(t, h.rsNow(t, rs)); err != nil {
		t.Fatal(err)
	}
	if st := h.rsNow(t, rs).Status; st.Replicas != 2 {
		t.Errorf("status.replicas %d after the deletions", st.Replicas)
	}
	// Nothing more to do: a third sync writes nothing.
	h.fake.Reset()
	if err := h.sync(t, h.rsNow(t, rs)); err != nil {
		t.Fatal(err)
	}
	if a := h.fake.Actions(); len(a) != 0 {
		t.Errorf("third sync wrote %v", a)
	}
}

func TestAdoptsMatchingOrphansAndReleasesOthers(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 3)
	other := newRS("other", 1)
	h.add(other)
	h.add(rs,
		pod(rs, "orphan", orphan),
		pod(rs, "owned"),
		pod(rs, "relabelled", withLabels(map[string]string{"app": "elsewhere"})),
		pod(other, "foreign", withLabels(map[string]string{"app": "web"})),
		pod(rs, "orphan-terminating", orphan, deleting),
		pod(rs, "orphan-nomatch", orphan, withLabels(map[string]string{"app": "db"})),
	)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	updates := map[string]*corev1.Pod{}
	for _, a := range h.writes("update", "pods") {
		updates[a.Key] = a.Object.(*corev1.Pod)
	}
	if len(updates) != 2 {
		t.Fatalf("updated %d pods, want orphan and relabelled: %v", len(updates), updates)
	}
	if p := updates["default/orphan"]; p == nil || metav1.GetControllerOf(p) == nil || metav1.GetControllerOf(p).UID != rs.UID {
		t.Errorf("orphan not adopted: %+v", p)
	}
	if p := updates["default/relabelled"]; p == nil || len(p.OwnerReferences) != 0 {
		t.Errorf("relabelled pod not released: %+v", p)
	}
	// orphan + owned count; one more is created.
	if n := len(h.writes("create", "pods")); n != 1 {
		t.Errorf("created %d pods, want 1", n)
	}
	if d := h.writes("delete", "pods"); len(d) != 0 {
		t.Errorf("deleted %v", d)
	}
}

func TestDeletingReplicaSetNeitherAdoptsNorScales(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 3)
	now := metav1.NewTime(t0)
	rs.DeletionTimestamp = &now
	rs.Finalizers = []string{"orphan"}
	h.add(rs, pod(rs, "orphan", orphan), pod(rs, "relabelled", withLabels(map[string]string{"app": "x"})))
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.fake.Actions() {
		if a.Resource == "pods" {
			t.Errorf("deleting replicaset wrote %s %s", a.Verb, a.Key)
		}
	}
}

func TestTerminalAndTerminatingPodsAreReplaced(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 3)
	h.add(rs,
		pod(rs, "ok", onNode("n1"), readySince(t0)),
		pod(rs, "done", onNode("n1"), phase(corev1.PodSucceeded)),
		pod(rs, "failed", onNode("n1"), phase(corev1.PodFailed)),
		pod(rs, "going", onNode("n1"), deleting),
	)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	if n := len(h.writes("create", "pods")); n != 2 {
		t.Fatalf("created %d pods, want 2", n)
	}
	if err := h.sync(t, h.rsNow(t, rs)); err != nil {
		t.Fatal(err)
	}
	st := h.rsNow(t, rs).Status
	if st.Replicas != 3 || st.TerminatingReplicas == nil || *st.TerminatingReplicas != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestStatusCountsReadyAvailableAndLabeled(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 4)
	rs.Spec.MinReadySeconds = 30
	rs.Generation = 7
	h.add(rs,
		pod(rs, "avail", readySince(t0.Add(-time.Minute))),
		pod(rs, "fresh", readySince(t0.Add(-time.Second))),
		pod(rs, "notready", phase(corev1.PodRunning)),
		pod(rs, "partial", phase(corev1.PodRunning), withLabels(map[string]string{"app": "web"})),
	)
	if err := h.sync(t, rs); err != nil {
		t.Fatal(err)
	}
	st := h.rsNow(t, rs).Status
	want := appsv1.ReplicaSetStatus{Replicas: 4, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 7}
	if st.Replicas != want.Replicas || st.FullyLabeledReplicas != want.FullyLabeledReplicas || st.ReadyReplicas != want.ReadyReplicas ||
		st.AvailableReplicas != want.AvailableReplicas || st.ObservedGeneration != want.ObservedGeneration {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	// The controller looks again when "fresh" becomes available.
	if wait, ok := h.c.nextAvailable(rs, h.pods().List("default", nil)); !ok || wait != 30*time.Second {
		t.Errorf("next availability check in %v (%v), want 30s", wait, ok)
	}
	// Once "fresh" has been ready for minReadySeconds it is available.
	h.now = t0.Add(time.Minute)
	if err := h.sync(t, h.rsNow(t, rs)); err != nil {
		t.Fatal(err)
	}
	if st := h.rsNow(t, rs).Status; st.AvailableReplicas != 2 {
		t.Errorf("available %d a minute later, want 2", st.AvailableReplicas)
	}
}

func TestCreateFailureSetsReplicaFailureUntilCreatesSucceed(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 4)
	h.add(rs)
	quota := errors.New(`pods "web-x" is forbidden: exceeded quota`)
	h.fake.Err = func(a controllertest.Action) error {
		if a.Verb == "create" && a.Resource == "pods" {
			return quota
		}
		return nil
	}
	if err := h.sync(t, rs); err == nil {
		t.Fatal("sync succeeded with every create failing")
	}
	if n := len(h.fake.Actions()); n == 0 {
		t.Fatal("no writes")
	}
	st := h.rsNow(t, rs).Status
	c := condition(st.Conditions, appsv1.ReplicaSetReplicaFailure)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "FailedCreate" || !strings.Contains(c.Message, "exceeded quota") {
		t.Fatalf("conditions %+v", st.Conditions)
	}
	if ev := h.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "FailedCreate: Error creating: ") {
		t.Errorf("events %q (slow start must stop after the first failure)", ev)
	}
	// The failed creations were not expected: the retry creates at once.
	h.fake.Err = nil
	for range 2 {
		if err := h.sync(t, h.rsNow(t, rs)); err != nil {
			t.Fatal(err)
		}
	}
	st = h.rsNow(t, rs).Status
	if st.Replicas != 4 || condition(st.Conditions, appsv1.ReplicaSetReplicaFailure) != nil {
		t.Errorf("after recovery: %+v", st)
	}
}

func TestPodEventsMapToTheirReplicaSets(t *testing.T) {
	h := newHarness(t)
	rs := newRS("web", 1)
	other := newRS("db", 1)
	h.add(rs)
	h.add(other)
	drain := func() []string {
		var keys []string
		for h.c.queue.Len() > 0 {
			k, _ := h.c.queue.Get()
			keys = append(keys, k)
			h.c.queue.Done(k)
		}
		sort.Strings(keys)
		return keys
	}
	h.c.addPod(pod(rs, "owned"))
	if k := drain(); len(k) != 1 || k[0] != "default/web" {
		t.Errorf("owned pod enqueued %v", k)
	}
	h.c.addPod(pod(rs, "orphan", orphan, withLabels(map[string]string{"app": "db"})))
	if k := drain(); len(k) != 1 || k[0] != "default/db" {
		t.Errorf("orphan pod enqueued %v", k)
	}
	stale := pod(rs, "stale")
	stale.OwnerReferences[0].UID = "someone-else"
	h.c.addPod(stale)
	if k := drain(); len(k) != 0 {
		t.Errorf("pod of a replaced replicaset enqueued %v", k)
	}
	old := pod(rs, "moved")
	moved := pod(other, "moved")
	h.c.updatePod(old, moved)
	if k := drain(); len(k) != 2 {
		t.Errorf("pod changing controller enqueued %v, want both", k)
	}
}

func TestRunConvergesThroughWatches(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h.c.now = time.Now
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	rs := newRS("web", 7)
	h.add(rs)
	count := func() int {
		n := 0
		for _, p := range h.pods().List("default", nil) {
			if owns(rs, p) {
				n++
			}
		}
		return n
	}
	for count() != 7 || h.rsNow(t, rs).Status.Replicas != 7 {
		if ctx.Err() != nil {
			t.Fatalf("%d pods, status %+v", count(), h.rsNow(t, rs).Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A deleted pod is replaced.
	victim := h.pods().List("default", nil)[0]
	h.res.Resource(podResource).Remove(victim.Namespace, victim.Name)
	scaled := h.rsNow(t, rs).DeepCopy()
	for count() != 7 || len(h.writes("create", "pods")) != 8 {
		if ctx.Err() != nil {
			t.Fatalf("deleted pod not replaced: %d pods, %d creates", count(), len(h.writes("create", "pods")))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Scale down to 2.
	two := int32(2)
	scaled = h.rsNow(t, rs).DeepCopy()
	scaled.Spec.Replicas = &two
	scaled.Generation = 2
	h.res.Resource(rsResource).Put(scaled)
	for count() != 2 || h.rsNow(t, rs).Status.Replicas != 2 || h.rsNow(t, rs).Status.ObservedGeneration != 2 {
		if ctx.Err() != nil {
			t.Fatalf("scale down: %d pods, status %+v", count(), h.rsNow(t, rs).Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(h.writes("create", "pods")); n != 8 {
		t.Errorf("%d creates in all, want 8", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
