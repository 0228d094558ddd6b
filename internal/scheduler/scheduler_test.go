package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

var (
	podsGR  = schema.GroupResource{Resource: "pods"}
	nodesGR = schema.GroupResource{Resource: "nodes"}
)

// harness runs a scheduler over memory caches and a fake client.
type harness struct {
	res    controller.MemoryResources
	fake   *controllertest.Fake
	cancel context.CancelFunc
	done   chan struct{}
}

func startScheduler(t testing.TB, client func(*controllertest.Fake) controller.Client) *harness {
	res := controller.MemoryResources{}
	// MemoryResources creates resources lazily in a plain map: create
	// every one used before goroutines share it.
	for _, gr := range []schema.GroupResource{podsGR, nodesGR, {Resource: "events"}} {
		res.Resource(gr)
	}
	fake := controllertest.New(res)
	var c controller.Client = fake
	if client != nil {
		c = client(fake)
	}
	log := logrus.New()
	log.SetOutput(t.Output())
	env := controller.Env{Resources: res, Client: c, Log: logrus.NewEntry(log)}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{res: res, fake: fake, cancel: cancel, done: make(chan struct{})}
	s := New(env)
	go func() { defer close(h.done); _ = s.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) pod(name string) *corev1.Pod {
	o, ok := controller.Lister[*corev1.Pod]{Res: h.res.Resource(podsGR)}.Get("default", name)
	if !ok {
		return nil
	}
	return o
}

func (h *harness) actions(verb, resource string) []controllertest.Action {
	var out []controllertest.Action
	for _, a := range h.fake.Actions() {
		if a.Verb == verb && a.Resource == resource {
			out = append(out, a)
		}
	}
	return out
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulerBindsAndReportsUnschedulable(t *testing.T) {
	h := startScheduler(t, nil)
	for _, n := range []string{"n1", "n2", "n3"} {
		h.res.Resource(nodesGR).Put(makeNode(n, "1", "4Gi", 110))
	}
	for i := 0; i < 4; i++ {
		h.res.Resource(podsGR).Put(makePod(fmt.Sprintf("p%d", i), "600m", ""))
	}
	other := makePod("other", "", "", func(p *corev1.Pod) { p.Spec.SchedulerName = "someone-else" })
	h.res.Resource(podsGR).Put(other)
	eventually(t, func() error {
		if n := len(h.actions("bind", "pods")); n != 3 {
			return fmt.Errorf("%d bindings, want 3", n)
		}
		for _, a := range h.actions("create", "events") {
			if ev := a.Object.(*corev1.Event); ev.Reason == "FailedScheduling" {
				return nil
			}
		}
		return fmt.Errorf("no FailedScheduling event")
	})
	perNode := map[string]int{}
	var failed string
	for i := 0; i < 4; i++ {
		p := h.pod(fmt.Sprintf("p%d", i))
		if p.Spec.NodeName == "" {
			failed = p.Name
			continue
		}
		perNode[p.Spec.NodeName]++
	}
	if len(perNode) != 3 || failed == "" {
		t.Fatalf("placement %v, unscheduled %q: want one pod per node", perNode, failed)
	}
	want := "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
	eventually(t, func() error {
		p := h.pod(failed)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == "Unschedulable" && c.Message == want {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", p.Status.Conditions)
	})
	var scheduled, failing int
	for _, a := range h.actions("create", "events") {
		ev := a.Object.(*corev1.Event)
		switch ev.Reason {
		case "Scheduled":
			scheduled++
			if !strings.HasPrefix(ev.Message, "Successfully assigned default/p") || ev.ReportingController != "default-scheduler" {
				t.Errorf("Scheduled event %q by %q", ev.Message, ev.ReportingController)
			}
		case "FailedScheduling":
			failing++
			if ev.Type != corev1.EventTypeWarning || ev.Message != want || ev.InvolvedObject.Name != failed {
				t.Errorf("FailedScheduling event %s %q about %s", ev.Type, ev.Message, ev.InvolvedObject.Name)
			}
		}
	}
	if scheduled != 3 || failing < 1 {
		t.Fatalf("%d Scheduled, %d FailedScheduling events", scheduled, failing)
	}
	if h.pod("other").Spec.NodeName != "" {
		t.Fatal("pod of another scheduler was bound")
	}

	// A new node is a cluster event: the pending pod goes there once its
	// back-off is over.
	statusWrites := len(h.actions("update-status", "pods"))
	h.res.Resource(nodesGR).Put(makeNode("n4", "1", "4Gi", 110))
	eventually(t, func() error {
		if n := h.pod(failed).Spec.NodeName; n != "n4" {
			return fmt.Errorf("pending pod on %q", n)
		}
		return nil
	})
	if n := len(h.actions("update-status", "pods")); n != statusWrites {
		t.Fatalf("condition rewritten %d times though unchanged", n-statusWrites)
	}
}

// lagClient binds without the cache ever showing it, as when the watch
// is behind: only the assumed pods keep the scheduler from over-committing.
type lagClient struct {
	*controllertest.Fake
	mu    sync.Mutex
	binds map[string]string
}

func (c *lagClient) Bind(_ context.Context, pod *corev1.Pod, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.binds[pod.Name] = node
	return nil
}

func (c *lagClient) bound() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.binds {
		out[k] = v
	}
	return out
}

func TestAssumedPodsPreventOverCommit(t *testing.T) {
	var lag *lagClient
	h := startScheduler(t, func(f *controllertest.Fake) controller.Client {
		lag = &lagClient{Fake: f, binds: map[string]string{}}
		return lag
	})
	h.res.Resource(nodesGR).Put(makeNode("n1", "1", "4Gi", 110))
	h.res.Resource(nodesGR).Put(makeNode("n2", "1", "4Gi", 110))
	// One pod at a time, each in its own cycle and snapshot.
	for i := 0; i < 3; i++ {
		h.res.Resource(podsGR).Put(makePod(fmt.Sprintf("p%d", i), "600m", ""))
		eventually(t, func() error {
			if i < 2 && len(lag.bound()) != i+1 {
				return fmt.Errorf("%d bound", len(lag.bound()))
			}
			if i == 2 && len(h.actions("update-status", "pods")) == 0 {
				return fmt.Errorf("third pod not reported unschedulable")
			}
			return nil
		})
	}
	b := lag.bound()
	if len(b) != 2 || b["p0"] == b["p1"] {
		t.Fatalf("bindings %v: want p0 and p1 on different nodes and p2 pending", b)
	}
}

func TestSchedulerHonoursTaintsAndAntiAffinity(t *testing.T) {
	h := startScheduler(t, nil)
	h.res.Resource(nodesGR).Put(makeNode("n1", "2", "4Gi", 110))
	h.res.Resource(nodesGR).Put(makeNode("n2", "2", "4Gi", 110, withTaint("dedicated", "x", corev1.TaintEffectNoSchedule)))
	h.res.Resource(nodesGR).Put(makeNode("n3", "2", "4Gi", 110))
	for i := 0; i < 3; i++ {
		h.res.Resource(podsGR).Put(makePod(fmt.Sprintf("w%d", i), "", "", withPodLabels("app", "web"),
			withAntiAffinity(corev1.LabelHostname, "app", "web")))
	}
	eventually(t, func() error {
		if n := len(h.actions("bind", "pods")); n != 2 {
			return fmt.Errorf("%d bindings, want 2", n)
		}
		if len(h.actions("update-status", "pods")) != 1 {
			return fmt.Errorf("no pod reported unschedulable")
		}
		return nil
	})
	nodes := map[string]bool{}
	for i := 0; i < 3; i++ {
		if n := h.pod(fmt.Sprintf("w%d", i)).Spec.NodeName; n != "" {
			nodes[n] = true
		}
	}
	if !nodes["n1"] || !nodes["n3"] {
		t.Fatalf("web pods on %v, want n1 and n3", nodes)
	}
	msg := h.actions("update-status", "pods")[0].Object.(*corev1.Pod).Status.Conditions[0].Message
	if !strings.HasPrefix(msg, "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: x}, 2 node(s) didn't satisfy existing pods anti-affinity rules.") {
		t.Fatalf("message %q", msg)
	}
}

func TestSchedulerRunsAgainAfterStopping(t *testing.T) {
	res := controller.MemoryResources{}
	for _, gr := range []schema.GroupResource{podsGR, nodesGR, {Resource: "events"}} {
		res.Resource(gr)
	}
	fake := controllertest.New(res)
	s := New(controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(logrus.New())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- s.Run(ctx) }()
	res.Resource(nodesGR).Put(makeNode("n1", "1", "1Gi", 10))
	res.Resource(podsGR).Put(makePod("p", "", ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, _ := controller.Lister[*corev1.Pod]{Res: res.Resource(podsGR)}.Get("default", "p")
		if o.Spec.NodeName == "n1" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("second Run returned %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("pod not scheduled by the second Run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
