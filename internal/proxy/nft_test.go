package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// kernelView is what the kernel holds in the table: rule counts per chain
// and element keys per map, read back with the nftables library.
type kernelView struct {
	rules    map[string]int
	elements map[string]int
}

func readBack(t *testing.T, h netns.NsHandle, table string) kernelView {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	v := kernelView{rules: map[string]int{}, elements: map[string]int{}}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatalf("get rules of %s: %v", ch.Name, err)
		}
		v.rules[ch.Name] = len(rules)
	}
	sets, err := c.GetSets(tbl)
	if err != nil {
		t.Fatalf("get sets: %v", err)
	}
	for _, s := range sets {
		if s.Anonymous {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			t.Fatalf("get elements of %s: %v", s.Name, err)
		}
		v.elements[s.Name] = len(elems)
	}
	return v
}

func expectedView(rs *Ruleset) kernelView {
	v := kernelView{rules: map[string]int{}, elements: map[string]int{}}
	for _, c := range rs.Chains {
		v.rules[c.Name] = len(c.Rules)
	}
	for _, s := range rs.Sets {
		v.elements[s.Name] = len(s.Elements)
	}
	return v
}

func (v kernelView) String() string {
	var lines []string
	for n, c := range v.rules {
		lines = append(lines, fmt.Sprintf("chain %s: %d rules", n, c))
	}
	for n, c := range v.elements {
		lines = append(lines, fmt.Sprintf("set %s: %d elements", n, c))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func checkKernel(t *testing.T, h netns.NsHandle, rs *Ruleset) {
	t.Helper()
	got, want := readBack(t, h, rs.Table), expectedView(rs)
	if got.String() != want.String() {
		t.Fatalf("kernel table differs from the compiled ruleset:\n%s", lineDiff(want.String(), got.String()))
	}
}

// world is a small cluster state the integration tests mutate.
type world struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

func TestProxierKeepsKernelTableInSync(t *testing.T) {
	_, h := testNetns(t)
	p := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	aff := svc("default", "sticky", "10.43.0.21", 80)
	aff.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	np := svc("default", "web", "10.43.0.20", 80)
	np.Spec.Type = corev1.ServiceTypeNodePort
	np.Spec.Ports[0].NodePort = 30080
	w := world{
		services: []*corev1.Service{np, aff, svc("default", "none", "10.43.0.30", 53)},
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.0.7", node: "node-a"}),
			slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1.6"}),
		},
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"full sync", func() {}},
		{"add an endpoint", func() {
			w.slices[0] = slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.0.7", node: "node-a"}, ep{ip: "10.42.2.9"})
		}},
		{"remove an affinity endpoint", func() {
			w.slices[1] = slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.42.1.6"})
		}},
		{"endpoints appear for a rejecting service", func() {
			w.slices = append(w.slices, slice("default", "none", "none-1", "", 53, ep{ip: "10.42.3.3"}))
		}},
		{"remove a service", func() { w.services = w.services[1:] }},
		{"remove all endpoints", func() { w.slices = nil }},
	}
	for _, s := range steps {
		s.change()
		if err := p.Sync(w.services, w.slices); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkKernel(t, h, Compile(testConfig, w.services, w.slices))
	}

	// A restarted proxy rewrites the existing table in one full sync.
	w.slices = []*discoveryv1.EndpointSlice{slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.42.1.7"})}
	restarted := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	if err := restarted.Sync(w.services, w.slices); err != nil {
		t.Fatalf("full resync over an existing table: %v", err)
	}
	checkKernel(t, h, Compile(testConfig, w.services, w.slices))
}

// serve answers every TCP connection on addr with id, from inside ns.
func serve(t *testing.T, h netns.NsHandle, addr, id string) {
	var ln net.Listener
	var err error
	inNetns(t, h, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, id)
			c.Close()
		}
	}()
}

// fetch connects to addr from inside ns and returns what the server said.
func fetch(t *testing.T, h netns.NsHandle, addr string) (string, error) {
	var c net.Conn
	var err error
	inNetns(t, h, func() { c, err = net.DialTimeout("tcp", addr, 2*time.Second) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestTrafficReachesEndpointsThroughClusterIP(t *testing.T) {
	ns, h := testNetns(t)
	nsExec(t, ns, "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
	nsExec(t, ns, "ip", "link", "set", "dummy1", "up")
	nsExec(t, ns, "ip", "addr", "add", "10.99.0.2/24", "dev", "dummy0")
	nsExec(t, ns, "ip", "addr", "add", "10.99.0.10/24", "dev", "dummy0")
	nsExec(t, ns, "ip", "addr", "add", "10.99.0.11/24", "dev", "dummy0")
	nsExec(t, ns, "ip", "link", "set", "dummy0", "up")
	nsExec(t, ns, "ip", "route", "add", "default", "dev", "dummy0")
	serve(t, h, "10.99.0.10:8080", "a")
	serve(t, h, "10.99.0.11:8080", "b")

	cfg := testConfig
	cfg.DNSTarget = netip.MustParseAddrPort("10.99.0.10:8080") // a TCP stand-in for the DNS server
	p := newProxier(cfg, netlinkApplier{netnsFd: int(h)})
	web := svc("default", "web", "10.43.0.50", 80)
	web.Spec.Type = corev1.ServiceTypeNodePort
	web.Spec.Ports[0].NodePort = 30080
	sticky := svc("default", "sticky", "10.43.0.52", 80)
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	services := []*corev1.Service{web, svc("default", "empty", "10.43.0.51", 80), sticky}
	twoEndpoints := []*discoveryv1.EndpointSlice{
		slice("default", "web", "web-1", "", 8080, ep{ip: "10.99.0.10"}, ep{ip: "10.99.0.11"}),
		slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.99.0.10"}, ep{ip: "10.99.0.11"}),
	}
	if err := p.Sync(services, twoEndpoints); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"10.43.0.50:80", "10.99.0.2:30080"} { // ClusterIP, NodePort on a local address
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			got, err := fetch(t, h, target)
			if err != nil {
				t.Fatalf("fetch %s: %v", target, err)
			}
			seen[got]++
		}
		if seen["a"] == 0 || seen["b"] == 0 || len(seen) != 2 {
			t.Errorf("60 connections to %s reached %v, want both endpoints a and b", target, seen)
		}
	}
	sticky1, err := fetch(t, h, "10.43.0.52:80")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if got, err := fetch(t, h, "10.43.0.52:80"); err != nil || got != sticky1 {
			t.Fatalf("session affinity: connection %d reached %q (%v), the first reached %q", i, got, err, sticky1)
		}
	}
	if got, err := fetch(t, h, "10.43.0.10:53"); err != nil || got != "a" {
		t.Errorf("cluster DNS address: got %q, %v; want the DNS target (a)", got, err)
	}

	start := time.Now()
	_, err = fetch(t, h, "10.43.0.51:80")
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Errorf("service without endpoints: got %v after %v, want connection refused at once", err, time.Since(start))
	}

	// Incremental: one endpoint goes; all new connections reach the other.
	if err := p.Sync(services, []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.99.0.11"}), twoEndpoints[1]}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if got, err := fetch(t, h, "10.43.0.50:80"); err != nil || got != "b" {
			t.Fatalf("after removing endpoint a: got %q, %v; want b", got, err)
		}
	}
}

func TestCleanupDeletesOnlyItsTable(t *testing.T) {
	ns, h := testNetns(t)
	a := netlinkApplier{netnsFd: int(h)}
	if err := a.deleteTable("mizzen"); err != nil {
		t.Fatalf("cleanup without a table: %v", err)
	}
	nsExec(t, ns, "nft", "add", "table", "ip", "other")
	if err := a.Apply("mizzen", fullSync(Compile(testConfig, nil, nil))); err != nil {
		t.Fatal(err)
	}
	if err := a.deleteTable("mizzen"); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	out := nsExec(t, ns, "nft", "list", "tables")
	if strings.Contains(out, "mizzen") || !strings.Contains(out, "table ip other") {
		t.Errorf("after cleanup the tables are:\n%s\nwant only the other table", out)
	}
}

// TestKernelAcceptsEveryCompiledCase applies each golden case with the real
// applier (full sync), then turns it into the next case incrementally.
func TestKernelAcceptsEveryCompiledCase(t *testing.T) {
	_, h := testNetns(t)
	a := netlinkApplier{netnsFd: int(h)}
	var prev *rendered
	for _, tc := range compileCases() {
		next := render(Compile(tc.cfg, tc.services, tc.slices))
		if err := a.Apply("mizzen", fullSync(next.rs)); err != nil {
			t.Fatalf("%s: full sync: %v", tc.name, err)
		}
		checkKernel(t, h, next.rs)
		if prev != nil {
			if err := a.Apply("mizzen", fullSync(prev.rs)); err != nil {
				t.Fatal(err)
			}
			ops, ok := incremental(prev, next)
			if !ok {
				t.Fatalf("%s: no incremental path", tc.name)
			}
			if err := a.Apply("mizzen", ops); err != nil {
				t.Fatalf("%s: incremental from the previous case: %v\n%s", tc.name, err, opsText(ops))
			}
			checkKernel(t, h, next.rs)
		}
		prev = next
	}
}

// A table deleted behind the proxy's back (`nft flush ruleset` by a host
// firewall reload) comes back on the next sync, even without a change.
func TestSyncRestoresATableDeletedBehindItsBack(t *testing.T) {
	ns, h := testNetns(t)
	p := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	services := []*corev1.Service{svc("default", "web", "10.43.0.20", 80)}
	slices := []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"})}
	if err := p.Sync(services, slices); err != nil {
		t.Fatal(err)
	}
	nsExec(t, ns, "nft", "flush", "ruleset")
	if err := p.Sync(services, slices); err != nil {
		t.Fatalf("sync after the table was deleted: %v", err)
	}
	checkKernel(t, h, Compile(testConfig, services, slices))
}

// A transaction the kernel refuses fails as a whole and says which message
// the kernel refused.
func TestRefusedTransactionNamesTheRefusedMessage(t *testing.T) {
	_, h := testNetns(t)
	a := netlinkApplier{netnsFd: int(h)}
	if err := a.Apply("mizzen", fullSync(Compile(testConfig, nil, nil))); err != nil {
		t.Fatal(err)
	}
	err := a.Apply("mizzen", []Op{
		{Kind: OpAddChain, Name: "fine", Chain: &Chain{Name: "fine"}},
		{Kind: OpAddRule, Name: "no-such-chain", Rule: Rule{Verdict{Kind: VerdictAccept}}},
		{Kind: OpAddRule, Name: "fine", Rule: Rule{Verdict{Kind: VerdictAccept}}},
	})
	if err == nil || !strings.Contains(err.Error(), "no-such-chain") {
		t.Fatalf("got error %v, want one naming the chain no-such-chain", err)
	}
	if got := readBack(t, h, "mizzen"); got.rules["fine"] != 0 || len(got.rules) != len(expectedView(Compile(testConfig, nil, nil)).rules) {
		t.Errorf("a refused transaction changed the table:\n%s", got)
	}
}
