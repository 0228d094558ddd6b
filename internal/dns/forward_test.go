package dns

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	corev1 "k8s.io/api/core/v1"
)

// upstream is a fake resolver on 127.0.0.1 counting the queries it gets.
type upstream struct {
	addr string
	mu   sync.Mutex // guards hits
	hits map[string]int
}

// startUpstream serves answer over UDP and TCP until the test ends.
func startUpstream(t testing.TB, answer func(req *dns.Msg, tcp bool) *dns.Msg) *upstream {
	t.Helper()
	pc, l, err := bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String(), hits: map[string]int{}}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		u.mu.Lock()
		u.hits[strings.ToLower(req.Question[0].Name)]++
		u.mu.Unlock()
		w.WriteMsg(answer(req, tcp))
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *upstream) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[name]
}

// internet answers like a recursive resolver for a few names.
func internet(req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	soa := rr("example.org. 300 IN SOA ns.example.org. h.example.org. 1 7200 900 86400 60")
	switch {
	case name == "example.org." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{rr("example.org. 30 IN A 192.0.2.1")}
	case name == "example.org.":
		m.Ns = []dns.RR{soa}
	case name == "big.example.org." && !tcp:
		m.Truncated = true
	case name == "big.example.org.":
		for i := range 100 {
			m.Answer = append(m.Answer, rr("big.example.org. 30 IN A 192.0.2."+itoa(i)))
		}
	case name == "broken.example.org.":
		m.Rcode = dns.RcodeServerFailure
	case strings.HasSuffix(name, ".example.org."):
		m.Answer = []dns.RR{rr(name + " 30 IN A 192.0.2.2")}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	return m
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// deadPort returns a loopback UDP address where nothing listens.
func deadPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestForwardCachesHonouringTTL(t *testing.T) {
	up := startUpstream(t, internet)
	s := newTestServer(t, newFakeSource(), up.addr)
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	s.now = clk.now

	ask := func(name string) *dns.Msg {
		t.Helper()
		r := s.Answer(query(name, dns.TypeA), false)
		if r.Authoritative || !r.RecursionAvailable {
			t.Fatalf("forwarded answer aa=%v ra=%v", r.Authoritative, r.RecursionAvailable)
		}
		return r
	}
	if r := ask("example.org."); r.Rcode != dns.RcodeSuccess || rrs(r.Answer)[0] != "example.org. 30 IN A 192.0.2.1" {
		t.Fatalf("first answer %v", r)
	}
	clk.add(10 * time.Second)
	if r := ask("EXAMPLE.org."); rrs(r.Answer)[0] != "EXAMPLE.org. 20 IN A 192.0.2.1" {
		t.Fatalf("cached answer after 10s: %v", rrs(r.Answer))
	}
	if n := up.count("example.org."); n != 1 {
		t.Fatalf("upstream asked %d times, want 1 (cached)", n)
	}
	clk.add(20 * time.Second)
	if r := ask("example.org."); rrs(r.Answer)[0] != "example.org. 30 IN A 192.0.2.1" {
		t.Fatalf("answer after expiry: %v", rrs(r.Answer))
	}
	if n := up.count("example.org."); n != 2 {
		t.Fatalf("upstream asked %d times after the TTL ran out, want 2", n)
	}

	// Negative answers are cached for the SOA minimum (60s), not the SOA TTL.
	if r := ask("nowhere.test."); r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Fatalf("NXDOMAIN answer %v", r)
	}
	clk.add(59 * time.Second)
	ask("nowhere.test.")
	if n := up.count("nowhere.test."); n != 1 {
		t.Fatalf("NXDOMAIN asked upstream %d times within its negative TTL", n)
	}
	clk.add(time.Second)
	ask("nowhere.test.")
	if n := up.count("nowhere.test."); n != 2 {
		t.Fatalf("NXDOMAIN asked upstream %d times after its negative TTL, want 2", n)
	}

	// Failures are not cached.
	for range 2 {
		if r := ask("broken.example.org."); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("broken name rcode %s", dns.RcodeToString[r.Rcode])
		}
	}
	if n := up.count("broken.example.org."); n != 2 {
		t.Fatalf("SERVFAIL asked upstream %d times, want 2 (not cached)", n)
	}
}

func TestForwardTriesEachUpstream(t *testing.T) {
	up := startUpstream(t, internet)
	s := newTestServer(t, newFakeSource(), deadPort(t), up.addr)
	if r := s.Answer(query("example.org.", dns.TypeA), false); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("answer with the first upstream down: %v", r)
	}

	none := newTestServer(t, newFakeSource(), deadPort(t))
	if r := none.Answer(query("example.org.", dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode with no upstream answering: %s", dns.RcodeToString[r.Rcode])
	}
	noUpstreams := newTestServer(t, newFakeSource())
	if r := noUpstreams.Answer(query("example.org.", dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode with no upstream configured: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestForwardRetriesTruncatedOverTCP(t *testing.T) {
	up := startUpstream(t, internet)
	s := newTestServer(t, newFakeSource(), up.addr)
	r := s.Answer(query("big.example.org.", dns.TypeA), false)
	if r.Truncated || len(r.Answer) != 100 {
		t.Fatalf("tc=%v with %d answers, want the full TCP answer", r.Truncated, len(r.Answer))
	}
	if n := up.count("big.example.org."); n != 2 {
		t.Fatalf("upstream asked %d times, want UDP then TCP", n)
	}
	// The client, on plain UDP, still gets a truncated answer to retry over TCP.
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	s.ServeDNS(w, query("big.example.org.", dns.TypeA))
	if !w.msg.Truncated {
		t.Fatalf("plain UDP client got %d answers without TC", len(w.msg.Answer))
	}
}

func TestForwardEDNS(t *testing.T) {
	var mu sync.Mutex
	var seen *dns.OPT
	up := startUpstream(t, func(req *dns.Msg, tcp bool) *dns.Msg {
		mu.Lock()
		seen = req.IsEdns0()
		mu.Unlock()
		return internet(req, tcp)
	})
	s := newTestServer(t, newFakeSource(), up.addr)
	r := s.Answer(query("plain.example.org.", dns.TypeA), false)
	if r.IsEdns0() != nil {
		t.Fatal("client without EDNS got an OPT record")
	}
	req := query("do.example.org.", dns.TypeA)
	req.SetEdns0(4096, true)
	r = s.Answer(req, false)
	if opt := r.IsEdns0(); opt == nil || !opt.Do() {
		t.Fatalf("EDNS client got OPT %v, want DO", opt)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen == nil || !seen.Do() || seen.UDPSize() != ednsSize {
		t.Fatalf("upstream saw OPT %v, want DO and size %d", seen, ednsSize)
	}
}

func TestExternalNameOutsideTheClusterIsFollowed(t *testing.T) {
	up := startUpstream(t, internet)
	src := newFakeSource()
	ext := service("default", "shop", nil)
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "Shop.Example.org"
	src.addService(ext)
	s := newTestServer(t, src, up.addr)
	r := s.Answer(query("shop.default.svc.cluster.local.", dns.TypeA), false)
	want := []string{
		"shop.default.svc.cluster.local. 5 IN CNAME shop.example.org.",
		"shop.example.org. 30 IN A 192.0.2.2",
	}
	if got := rrs(r.Answer); r.Rcode != dns.RcodeSuccess || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("answer %s %q, want %q", dns.RcodeToString[r.Rcode], got, want)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(2)
	now := time.Unix(0, 0)
	m := new(dns.Msg)
	m.SetQuestion("a.", dns.TypeA)
	rr, _ := dns.NewRR("a. 60 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	for _, name := range []string{"a.", "b.", "c."} {
		c.put(cacheKey{name: name, qtype: dns.TypeA}, m, now)
	}
	if n := c.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
	if _, ok := c.get(cacheKey{name: "a.", qtype: dns.TypeA}, now); ok {
		t.Fatal("least recently used entry was kept")
	}
	if _, ok := c.get(cacheKey{name: "c.", qtype: dns.TypeA}, now); !ok {
		t.Fatal("newest entry was evicted")
	}
}

func TestCacheTTL(t *testing.T) {
	rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
	soa := rr("x. 300 IN SOA ns.x. h.x. 1 7200 900 86400 60")
	for _, tc := range []struct {
		name string
		msg  *dns.Msg
		want time.Duration // 0: not cached
	}{
		{"smallest answer TTL", &dns.Msg{Answer: []dns.RR{rr("x. 30 IN A 192.0.2.1"), rr("x. 20 IN A 192.0.2.2")}}, 20 * time.Second},
		{"capped at an hour", &dns.Msg{Answer: []dns.RR{rr("x. 86400 IN A 192.0.2.1")}}, time.Hour},
		{"zero TTL", &dns.Msg{Answer: []dns.RR{rr("x. 0 IN A 192.0.2.1")}}, 0},
		{"NXDOMAIN uses the SOA minimum", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}, Ns: []dns.RR{soa}}, 60 * time.Second},
		{"NODATA uses the SOA minimum", &dns.Msg{Ns: []dns.RR{soa}}, 60 * time.Second},
		{"negative without SOA", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}, 0},
		{"SERVFAIL", &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}, 0},
		{"truncated", &dns.Msg{MsgHdr: dns.MsgHdr{Truncated: true}, Answer: []dns.RR{rr("x. 30 IN A 192.0.2.1")}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := cacheTTL(tc.msg)
			if !ok {
				got = 0
			}
			if got != tc.want {
				t.Fatalf("cache TTL %v, want %v", got, tc.want)
			}
		})
	}
}

// TestForwardFailuresAreLogged checks that an operator sees why names
// outside the cluster get SERVFAIL (no upstream answering) at the default
// log level, without one line per failed query.
func TestForwardFailuresAreLogged(t *testing.T) {
	dead := deadPort(t)
	s := newTestServer(t, newFakeSource(), dead)
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	s.now = clk.now
	hook := logtest.NewLocal(s.log.Logger)
	warnings := func() []string {
		var out []string
		for _, e := range hook.AllEntries() {
			if e.Level <= logrus.WarnLevel {
				out = append(out, e.Message)
			}
		}
		return out
	}
	for range 3 {
		if r := s.Answer(query("example.org.", dns.TypeA), false); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode with no upstream answering: %s", dns.RcodeToString[r.Rcode])
		}
	}
	w := warnings()
	if len(w) != 1 || !strings.Contains(w[0], dead) || !strings.Contains(w[0], "example.org.") {
		t.Fatalf("warnings after 3 failures: %q, want one naming the query and upstream %s", w, dead)
	}
	clk.add(time.Minute)
	s.Answer(query("example.net.", dns.TypeA), false)
	if w := warnings(); len(w) != 2 || !strings.Contains(w[1], "example.net.") {
		t.Fatalf("warnings a minute later: %q, want a second one", w)
	}
}
