package nodeipam

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

func node(name, cidr string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	return n
}

func newTest(t *testing.T, cluster string, nodes ...*corev1.Node) (*Controller, controller.MemoryResources, *controllertest.Fake) {
	t.Helper()
	res := controller.MemoryResources{}
	// MemoryResources creates resources lazily without locking: make
	// every one used up front so Run's goroutines only read the map.
	res.Resource(corev1.Resource("events"))
	for _, n := range nodes {
		res.Resource(corev1.Resource("nodes")).Put(n)
	}
	fake := controllertest.New(res)
	log := logrus.New()
	log.SetOutput(t.Output())
	log.SetLevel(logrus.DebugLevel)
	env := controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(log),
		Config: controller.Config{ClusterCIDR: netip.MustParsePrefix(cluster), NodeCIDRMaskSize: 24}}
	return New(env), res, fake
}

func podCIDR(t *testing.T, res controller.MemoryResources, name string) string {
	t.Helper()
	n, ok := controller.Lister[*corev1.Node]{Res: res.Resource(corev1.Resource("nodes"))}.Get("", name)
	if !ok {
		t.Fatalf("node %s is gone", name)
	}
	if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		t.Fatalf("node %s: podCIDR %q and podCIDRs %v disagree", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
	return n.Spec.PodCIDR
}

func TestNodesGetTheLowestFreeRange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster string
		nodes   []*corev1.Node
		sync    []string
		want    map[string]string
		updates int
	}{
		{name: "two new nodes get distinct ranges", cluster: "10.42.0.0/16",
			nodes: []*corev1.Node{node("a", ""), node("b", "")}, sync: []string{"a", "b"},
			want: map[string]string{"a": "10.42.0.0/24", "b": "10.42.1.0/24"}, updates: 2},
		{name: "a set range is kept and marked used", cluster: "10.42.0.0/16",
			nodes: []*corev1.Node{node("a", "10.42.0.0/24"), node("b", "10.42.2.0/24"), node("c", "")},
			sync:  []string{"a", "b", "c"},
			want:  map[string]string{"a": "10.42.0.0/24", "b": "10.42.2.0/24", "c": "10.42.1.0/24"}, updates: 1},
		{name: "a larger range on a node covers its /24s", cluster: "10.42.0.0/16",
			nodes: []*corev1.Node{node("a", "10.42.0.0/23"), node("b", "")}, sync: []string{"b"},
			want: map[string]string{"b": "10.42.2.0/24"}, updates: 1},
		{name: "ranges outside the cluster CIDR do not matter", cluster: "10.42.0.0/16",
			nodes: []*corev1.Node{node("a", "192.168.0.0/24"), node("b", "")}, sync: []string{"b"},
			want: map[string]string{"b": "10.42.0.0/24"}, updates: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, res, fake := newTest(t, tc.cluster, tc.nodes...)
			for _, k := range tc.sync {
				if err := c.sync(context.Background(), k); err != nil {
					t.Fatalf("sync %s: %v", k, err)
				}
			}
			for n, want := range tc.want {
				if got := podCIDR(t, res, n); got != want {
					t.Errorf("node %s: podCIDR %q, want %q", n, got, want)
				}
			}
			if got := len(fake.Actions()); got != tc.updates {
				t.Errorf("%d writes, want %d: %v", got, tc.updates, fake.Actions())
			}
		})
	}
}

func TestIPv6Ranges(t *testing.T) {
	c, res, _ := newTest(t, "fd00:42::/56", node("a", ""), node("b", ""))
	c.env.Config.NodeCIDRMaskSize = 64
	for _, k := range []string{"a", "b"} {
		if err := c.sync(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := podCIDR(t, res, "a"), podCIDR(t, res, "b"); a != "fd00:42::/64" || b != "fd00:42:0:1::/64" {
		t.Fatalf("ranges %s %s", a, b)
	}
}

func TestDeletedNodeFreesItsRange(t *testing.T) {
	c, res, _ := newTest(t, "10.42.0.0/16", node("a", "10.42.0.0/24"), node("b", "10.42.1.0/24"))
	res.Resource(corev1.Resource("nodes")).Remove("", "a")
	if err := c.sync(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	res.Resource(corev1.Resource("nodes")).Put(node("c", ""))
	if err := c.sync(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if got := podCIDR(t, res, "c"); got != "10.42.0.0/24" {
		t.Fatalf("new node got %s, want the freed 10.42.0.0/24", got)
	}
}

func TestFullRangeRecordsCIDRNotAvailable(t *testing.T) {
	c, res, fake := newTest(t, "10.42.0.0/24", node("a", "10.42.0.0/24"), node("b", ""))
	for range 2 {
		if err := c.sync(context.Background(), "b"); err == nil {
			t.Fatal("sync succeeded with no range left")
		}
	}
	evs := controller.Lister[*corev1.Event]{Res: res.Resource(corev1.Resource("events"))}.List("", nil)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1 however often it retries (%v)", len(evs), fake.Actions())
	}
	ev := evs[0]
	if ev.Reason != "CIDRNotAvailable" || ev.Message != "Node b status is now: CIDRNotAvailable" ||
		ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Name != "b" || ev.Source.Component != "cidrAllocator" {
		t.Fatalf("event %+v", ev)
	}
	if n, _ := c.nodes.Get("", "b"); n.Spec.PodCIDR != "" {
		t.Fatalf("node b got %s", n.Spec.PodCIDR)
	}
}

func TestBurstBeforeTheCacheCatchesUp(t *testing.T) {
	c, res, _ := newTest(t, "10.42.0.0/16", node("a", ""), node("b", ""))
	// Writes land elsewhere: the controller's cache never sees them, as
	// when two nodes are synced before the watch delivers the first write.
	other := controller.MemoryResources{}
	for _, n := range []string{"a", "b"} {
		o, _ := res.Resource(corev1.Resource("nodes")).Get(res.Resource(corev1.Resource("nodes")).Key("", n))
		other.Resource(corev1.Resource("nodes")).Put(o.DeepCopyObject())
	}
	fake := controllertest.New(other)
	c.env.Client = fake
	for _, k := range []string{"a", "b", "a"} {
		if err := c.sync(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(fake.Actions()); got != 2 {
		t.Fatalf("%d writes, want 2 (one per node): %v", got, fake.Actions())
	}
	if a, b := podCIDR(t, other, "a"), podCIDR(t, other, "b"); a == b {
		t.Fatalf("both nodes got %s", a)
	}
}

func TestConflictRetriesAndReleasesTheReservation(t *testing.T) {
	c, res, fake := newTest(t, "10.42.0.0/16", node("a", ""), node("b", ""))
	fake.Err = func(a controllertest.Action) error {
		if a.Key == "a" {
			return apierrors.NewConflict(corev1.Resource("nodes"), "a", errors.New("modified"))
		}
		return nil
	}
	if err := c.sync(context.Background(), "a"); err == nil {
		t.Fatal("conflict not returned for a retry")
	}
	if err := c.sync(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if got := podCIDR(t, res, "b"); got != "10.42.0.0/24" {
		t.Fatalf("failed reservation was kept: b got %s", got)
	}
}

func TestRunAllocatesAndWaitsForAFreedRange(t *testing.T) {
	c, res, _ := newTest(t, "10.42.0.0/24", node("a", "10.42.0.0/24"), node("b", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	nodes := res.Resource(corev1.Resource("nodes"))
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for !f() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitFor("CIDRNotAvailable", func() bool {
		evs, _ := res.Resource(corev1.Resource("events")).List("", "")
		return len(evs) > 0
	})
	nodes.Remove("", "a")
	waitFor("node b's range", func() bool {
		n, _ := c.nodes.Get("", "b")
		return n.Spec.PodCIDR == "10.42.0.0/24"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
