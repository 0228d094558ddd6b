package proxy

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// recordingApplier is the fake at the nftables seam: it records every
// transaction and can be told to fail.
type recordingApplier struct {
	mu   sync.Mutex
	txs  [][]Op
	fail error
}

func (r *recordingApplier) Apply(table string, ops []Op) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.txs = append(r.txs, ops)
	return nil
}

func (r *recordingApplier) transactions() [][]Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]Op(nil), r.txs...)
}

func opsText(ops []Op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String() + "\n")
	}
	return b.String()
}

func isFull(ops []Op) bool { return len(ops) > 0 && ops[0].Kind == OpResetTable }

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(t.Output())
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l)
}

func TestIncrementalTransactions(t *testing.T) {
	web := svc("default", "web", "10.43.0.20", 80)
	web.Spec.Type = corev1.ServiceTypeNodePort
	web.Spec.Ports[0].NodePort = 30080
	sticky := svc("default", "sticky", "10.43.0.21", 80)
	sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	base := world{
		services: []*corev1.Service{web, sticky},
		slices: []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1.6"}),
			slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.42.2.5"}, ep{ip: "10.42.2.6"}),
		},
	}
	cases := []struct {
		name string
		next world
	}{
		{"diff-nothing", base},
		{"diff-add-endpoint", world{base.services, []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1.6"}, ep{ip: "10.42.1.7"}), base.slices[1]}}},
		{"diff-endpoint-not-ready", world{base.services, []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1.6", notReady: true}), base.slices[1]}}},
		{"diff-remove-affinity-endpoint", world{base.services, []*discoveryv1.EndpointSlice{
			base.slices[0], slice("default", "sticky", "sticky-1", "", 8080, ep{ip: "10.42.2.5"})}}},
		{"diff-last-endpoint-gone", world{base.services, base.slices[1:]}},
		{"diff-remove-service", world{base.services[1:], base.slices}},
	}
	prev := render(Compile(testConfig, base.services, base.slices))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops, ok := incremental(prev, render(Compile(testConfig, tc.next.services, tc.next.slices)))
			if !ok {
				t.Fatal("incremental refused a plain change")
			}
			got := opsText(ops)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("transaction differs from %s:\n%s", path, lineDiff(string(want), got))
			}
			checkOrder(t, ops)
		})
	}
}

// checkOrder asserts what the kernel needs of a transaction's order: a chain
// or set exists before anything refers to it, and nothing refers to a chain
// or set when it is deleted.
func checkOrder(t *testing.T, ops []Op) {
	t.Helper()
	pos := map[string]int{}
	for i, o := range ops {
		pos[o.String()] = i
	}
	for i, o := range ops {
		switch o.Kind {
		case OpDeleteChain:
			if j, ok := pos["flush chain "+o.Name]; ok && j > i {
				t.Errorf("chain %s deleted before it is flushed", o.Name)
			}
			for j := i + 1; j < len(ops); j++ {
				if ops[j].Kind == OpDeleteSet {
					t.Errorf("set %s deleted after chain %s: its elements may still refer to the chain", ops[j].Name, o.Name)
				}
			}
		case OpAddElements, OpAddRule:
			text := o.String()
			for name, j := range pos {
				if strings.HasPrefix(name, "add chain ") && j > i && strings.Contains(text, strings.TrimPrefix(name, "add chain ")) {
					t.Errorf("%q refers to a chain added later", text)
				}
			}
		}
	}
}

func TestSyncIsFullFirstThenIncrementalAndFullAgainAfterFailureOrPeriod(t *testing.T) {
	fake := &recordingApplier{}
	cfg := testConfig
	cfg.Log = testLog(t)
	p := newProxier(cfg, fake)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	services := []*corev1.Service{svc("default", "web", "10.43.0.20", 80)}
	one := []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"})}
	two := []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1.6"})}

	steps := []struct {
		name     string
		slices   []*discoveryv1.EndpointSlice
		advance  time.Duration
		fail     error
		wantErr  bool
		wantTx   bool
		wantFull bool
	}{
		{name: "first sync replaces the table", slices: one, wantTx: true, wantFull: true},
		{name: "a change is incremental", slices: two, wantTx: true},
		{name: "no change, no transaction", slices: two},
		{name: "a failed transaction", slices: one, fail: errors.New("boom"), wantErr: true},
		{name: "after a failure the table is replaced", slices: one, wantTx: true, wantFull: true},
		{name: "still incremental before the period", slices: two, advance: 59 * time.Minute, wantTx: true},
		{name: "full resync after the period even without change", slices: two, advance: 2 * time.Minute, wantTx: true, wantFull: true},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		fake.fail = s.fail
		before := len(fake.transactions())
		err := p.Sync(services, s.slices)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Sync error = %v, want error %v", s.name, err, s.wantErr)
		}
		txs := fake.transactions()
		if got := len(txs) > before; got != s.wantTx {
			t.Fatalf("%s: transaction applied = %v, want %v", s.name, got, s.wantTx)
		}
		if s.wantTx && isFull(txs[len(txs)-1]) != s.wantFull {
			t.Fatalf("%s: full = %v, want %v:\n%s", s.name, !s.wantFull, s.wantFull, opsText(txs[len(txs)-1]))
		}
	}
}

func TestRunSyncsOnChangeAndStopsWithContext(t *testing.T) {
	fake := &recordingApplier{}
	cfg := testConfig
	cfg.Log = testLog(t)
	p := newProxier(cfg, fake)
	var mu sync.Mutex
	slices := []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"})}
	services := []*corev1.Service{svc("default", "web", "10.43.0.20", 80)}
	list := func() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
		mu.Lock()
		defer mu.Unlock()
		return services, slices
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, list) }()

	waitFor := func(what string, cond func([][]Op) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond(fake.transactions()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; transactions:\n%v", what, fake.transactions())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the initial full sync", func(txs [][]Op) bool { return len(txs) == 1 && isFull(txs[0]) })

	// A burst of changes lands quickly, in few transactions.
	start := time.Now()
	for i := 6; i < 16; i++ {
		mu.Lock()
		slices = []*discoveryv1.EndpointSlice{slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.1." + strconv.Itoa(i)})}
		mu.Unlock()
		p.Changed()
	}
	waitFor("the last endpoint", func(txs [][]Op) bool {
		return len(txs) > 1 && strings.Contains(opsText(txs[len(txs)-1]), "10.42.1.15:8080")
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("an endpoint change took %v to apply, want well under 2s", took)
	}
	if n := len(fake.transactions()); n > 4 {
		t.Errorf("10 quick changes made %d transactions, want them coalesced", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v on cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewRejectsNonIPv4Config(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ipv4", Config{ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), ClusterDNS: netip.MustParseAddr("10.43.0.10"),
			DNSTarget: netip.MustParseAddrPort("10.42.0.1:53")}, true},
		{"no DNS target", Config{ClusterDNS: netip.MustParseAddr("10.43.0.10")}, true},
		{"ipv6 cluster CIDR", Config{ClusterCIDR: netip.MustParsePrefix("fd00::/64")}, false},
		{"ipv6 DNS target", Config{ClusterDNS: netip.MustParseAddr("10.43.0.10"), DNSTarget: netip.MustParseAddrPort("[fd00::1]:53")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); (err == nil) != tc.ok {
				t.Errorf("New error = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
