package proxy

import (
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// A full sync (a restarted agent, the hourly resync) replaces the table;
// clients keep their sessionAffinity endpoint, as with kube-proxy, which
// never drops its affinity sets.
func TestFullSyncKeepsSessionAffinity(t *testing.T) {
	ns, h := testNetns(t)
	nsExec(t, ns, "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
	nsExec(t, ns, "ip", "link", "set", "dummy1", "up")
	for _, a := range []string{"10.99.0.2/24", "10.99.0.10/24", "10.99.0.11/24"} {
		nsExec(t, ns, "ip", "addr", "add", a, "dev", "dummy0")
	}
	nsExec(t, ns, "ip", "link", "set", "dummy0", "up")
	nsExec(t, ns, "ip", "route", "add", "default", "dev", "dummy0")
	serve(t, h, "10.99.0.10:8080", "a")
	serve(t, h, "10.99.0.11:8080", "b")

	sticky := svc("default", "sticky", "10.43.0.52", 80)
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	services := []*corev1.Service{sticky}
	slices := []*discoveryv1.EndpointSlice{slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.99.0.10"}, ep{ip: "10.99.0.11"})}
	if err := newProxier(testConfig, netlinkApplier{netnsFd: int(h)}).Sync(services, slices); err != nil {
		t.Fatal(err)
	}
	first, err := fetch(t, h, "10.43.0.52:80")
	if err != nil {
		t.Fatal(err)
	}
	before := affinityEntries(t, h)
	if len(before) != 1 {
		t.Fatalf("affinity entries after one connection: %v, want one", before)
	}

	restarted := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	if err := restarted.Sync(services, slices); err != nil {
		t.Fatal(err)
	}
	after := affinityEntries(t, h)
	for set, exp := range before {
		if got, ok := after[set]; !ok || got <= 0 || got > exp+time.Second {
			t.Fatalf("after a full sync the affinity entries are %v, want %v kept with their expiry", after, before)
		}
	}
	for i := 0; i < 10; i++ {
		if got, err := fetch(t, h, "10.43.0.52:80"); err != nil || got != first {
			t.Fatalf("after a full sync connection %d reached %q (%v), the client's endpoint is %q", i, got, err, first)
		}
	}
}

// affinityEntries returns the time left of every element of the table's
// dynamic sets, by set name.
func affinityEntries(t *testing.T, h netns.NsHandle) map[string]time.Duration {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	sets, err := c.GetSets(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: DefaultTable})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, s := range sets {
		if !s.Dynamic {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			out[s.Name] = e.Expires
		}
	}
	return out
}
