package podgc

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func on(node string) podOpt           { return func(p *corev1.Pod) { p.Spec.NodeName = node } }
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func reason(r string) podOpt          { return func(p *corev1.Pod) { p.Status.Reason = r } }
func created(d time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(d)) }
}
func terminating(fin string) podOpt {
	return func(p *corev1.Pod) {
		now := metav1.NewTime(t0)
		p.DeletionTimestamp, p.Finalizers = &now, []string{fin}
	}
}

// graceClient records the grace period of every delete.
type graceClient struct {
	*controllertest.Fake
	mu    sync.Mutex
	grace map[string]int64
}

func (c *graceClient) Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error {
	c.mu.Lock()
	g := int64(-1)
	if opts != nil && opts.GracePeriodSeconds != nil {
		g = *opts.GracePeriodSeconds
	}
	c.grace[controller.Key(obj)] = g
	c.mu.Unlock()
	return c.Fake.Delete(ctx, obj, opts)
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTest(t *testing.T, threshold int, nodes []string, pods ...*corev1.Pod) (*Controller, *graceClient, *clock) {
	t.Helper()
	res := controller.MemoryResources{}
	for _, n := range nodes {
		res.Resource(corev1.Resource("nodes")).Put(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	for _, p := range pods {
		res.Resource(corev1.Resource("pods")).Put(p)
	}
	client := &graceClient{Fake: controllertest.New(res), grace: map[string]int64{}}
	log := logrus.New()
	log.SetOutput(t.Output())
	log.SetLevel(logrus.DebugLevel)
	clk := &clock{now: t0}
	env := controller.Env{Resources: res, Client: client, Log: logrus.NewEntry(log),
		Config: controller.Config{TerminatedPodGCThreshold: threshold}}
	return New(env, WithClock(clk.Now), WithPeriod(time.Millisecond), WithQuarantine(40*time.Second)), client, clk
}

// writes summarises the fake's actions as "verb key" in order.
func writes(c *graceClient) string {
	var out []string
	for _, a := range c.Actions() {
		out = append(out, a.Verb+" "+a.Key)
	}
	return strings.Join(out, ", ")
}

func TestTerminatedPodsBeyondThresholdGoOldestAndEvictedFirst(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		pods      []*corev1.Pod
		want      []string
	}{
		{name: "under the threshold", threshold: 3,
			pods: []*corev1.Pod{pod("a", on("n1"), phase(corev1.PodSucceeded)), pod("b", on("n1"), phase(corev1.PodFailed))}},
		{name: "oldest first, evicted before all, running never", threshold: 2,
			pods: []*corev1.Pod{
				pod("old", on("n1"), phase(corev1.PodSucceeded), created(time.Second)),
				pod("older", on("n1"), phase(corev1.PodFailed), created(0)),
				pod("new", on("n1"), phase(corev1.PodSucceeded), created(time.Hour)),
				pod("evicted", on("n1"), phase(corev1.PodFailed), reason("Evicted"), created(2*time.Hour)),
				pod("running", on("n1"), created(-time.Hour)),
				pod("pending", created(-time.Hour), phase(corev1.PodPending)),
			},
			want: []string{"evicted", "older"}},
		{name: "same age: by name", threshold: 1,
			pods: []*corev1.Pod{pod("b", on("n1"), phase(corev1.PodSucceeded)), pod("a", on("n1"), phase(corev1.PodSucceeded))},
			want: []string{"a"}},
		{name: "threshold 0 disables", threshold: 0,
			pods: []*corev1.Pod{pod("a", on("n1"), phase(corev1.PodSucceeded))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client, _ := newTest(t, tc.threshold, []string{"n1"}, tc.pods...)
			c.gc(context.Background())
			var want []string
			for _, n := range tc.want {
				want = append(want, "delete default/"+n)
			}
			if got := writes(client); got != strings.Join(want, ", ") {
				t.Fatalf("writes %q, want %q", got, strings.Join(want, ", "))
			}
			for k, g := range client.grace {
				if g != 0 {
					t.Errorf("%s deleted with grace %d, want 0", k, g)
				}
			}
		})
	}
}

func TestOrphanedPodsGoAfterQuarantine(t *testing.T) {
	c, client, clk := newTest(t, 100, []string{"n1"},
		pod("orphan", on("gone")), pod("done-orphan", on("gone"), phase(corev1.PodSucceeded)),
		pod("fine", on("n1")), pod("unscheduled"))
	c.gc(context.Background())
	clk.now = t0.Add(39 * time.Second)
	c.gc(context.Background())
	if w := writes(client); w != "" {
		t.Fatalf("writes during quarantine: %s", w)
	}
	clk.now = t0.Add(40 * time.Second)
	c.gc(context.Background())
	want := "delete default/done-orphan, update-status default/orphan, delete default/orphan"
	if got := writes(client); got != want {
		t.Fatalf("writes %q, want %q", got, want)
	}
	failed := client.Actions()[1].Object.(*corev1.Pod)
	if failed.Status.Phase != corev1.PodFailed || len(failed.Status.Conditions) != 1 {
		t.Fatalf("status %+v", failed.Status)
	}
	cond := failed.Status.Conditions[0]
	if cond.Type != corev1.DisruptionTarget || cond.Status != corev1.ConditionTrue ||
		cond.Reason != "DeletionByPodGC" || cond.Message != "PodGC: node no longer exists" {
		t.Fatalf("condition %+v", cond)
	}
	if client.grace["default/orphan"] != 0 || client.grace["default/done-orphan"] != 0 {
		t.Fatalf("grace %v", client.grace)
	}
}

func TestNodeBackDuringQuarantineKeepsItsPods(t *testing.T) {
	c, client, clk := newTest(t, 100, nil, pod("p", on("late")))
	c.gc(context.Background())
	c.env.Resources.Resource(corev1.Resource("nodes")).Put(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "late"}})
	clk.now = t0.Add(time.Minute)
	c.gc(context.Background())
	if w := writes(client); w != "" {
		t.Fatalf("writes: %s", w)
	}
	if len(c.missing) != 0 {
		t.Fatalf("still quarantined: %v", c.missing)
	}
	// Gone again: a fresh quarantine starts.
	c.env.Resources.Resource(corev1.Resource("nodes")).Remove("", "late")
	c.gc(context.Background())
	clk.now = t0.Add(time.Minute + 39*time.Second)
	c.gc(context.Background())
	if w := writes(client); w != "" {
		t.Fatalf("writes before a fresh quarantine ended: %s", w)
	}
}

func TestUnscheduledTerminatingPodsAreFailedAndDeleted(t *testing.T) {
	c, client, _ := newTest(t, 100, []string{"n1"},
		pod("stuck", terminating("example.com/hold")),
		pod("bound-terminating", on("n1"), terminating("example.com/hold")))
	c.gc(context.Background())
	want := "update-status default/stuck, delete default/stuck"
	if got := writes(client); got != want {
		t.Fatalf("writes %q, want %q", got, want)
	}
	if p := client.Actions()[0].Object.(*corev1.Pod); p.Status.Phase != corev1.PodFailed || len(p.Status.Conditions) != 0 {
		t.Fatalf("status %+v", p.Status)
	}
}

func TestRunCollectsPeriodically(t *testing.T) {
	c, client, _ := newTest(t, 1, []string{"n1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	pods := c.env.Resources.Resource(corev1.Resource("pods"))
	for i := range 3 {
		pods.Put(pod(fmt.Sprintf("p%d", i), on("n1"), phase(corev1.PodSucceeded), created(time.Duration(i)*time.Second)))
	}
	for {
		objs, _ := pods.List("", "")
		if len(objs) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("terminated pods never collected: %s", writes(client))
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var left []string
	objs, _ := pods.List("", "")
	for _, o := range objs {
		left = append(left, o.(*corev1.Pod).Name)
	}
	sort.Strings(left)
	if strings.Join(left, ",") != "p2" {
		t.Fatalf("kept %v, want the newest", left)
	}
}
