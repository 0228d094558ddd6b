package dns

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// runServer runs s until the test ends and returns its address once bound.
func runServer(t testing.TB, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	return s.Addrs()[0]
}

func TestRunServesUDPAndTCP(t *testing.T) {
	up := startUpstream(t, internet)
	s := newTestServer(t, testSource(), up.addr)
	addr := runServer(t, s)
	for _, netw := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
		for _, tc := range []struct{ name, want string }{
			{"web.default.svc.cluster.local.", "10.43.0.20"},
			{"example.org.", "192.0.2.1"},
		} {
			r, _, err := c.Exchange(query(tc.name, dns.TypeA), addr)
			if err != nil {
				t.Fatalf("%s %s: %v", netw, tc.name, err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != tc.want {
				t.Fatalf("%s %s: %v", netw, tc.name, r.Answer)
			}
		}
	}
}

func TestRunSurvivesGarbage(t *testing.T) {
	s := newTestServer(t, testSource())
	addr := runServer(t, s)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	valid, _ := query("web.default.svc.cluster.local.", dns.TypeA).Pack()
	for i := range 500 {
		var b []byte
		if i%2 == 0 {
			b = make([]byte, rng.IntN(600))
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
		} else { // a valid query with a few bytes flipped
			b = slices.Clone(valid)
			for range 1 + rng.IntN(4) {
				b[rng.IntN(len(b))] = byte(rng.UintN(256))
			}
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp.Write([]byte{0, 40, 1, 2, 3}) // a length prefix promising more than is sent
	tcp.Close()

	// The burst may overflow the socket buffer and drop a query sent right
	// after it, so ask like a stub resolver does: retry until a deadline.
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _, err := c.Exchange(query("web.default.svc.cluster.local.", dns.TypeA), addr)
		if err == nil && len(r.Answer) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after garbage: %v %v", r, err)
		}
	}
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(query("web.default.svc.cluster.local.", dns.TypeA), addr)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("no TCP answer after garbage: %v %v", r, err)
	}
}

func TestRunFailsFastWhenItCannotBind(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	src := testSource()
	s, err := New(Config{Domain: "cluster.local", Source: src, Upstreams: []string{"127.0.0.1:1"}, Listen: []string{taken.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("Run returned %v, want a listen error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not fail on a taken address")
	}
}

func TestNewChecksConfig(t *testing.T) {
	src := testSource()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no source", Config{Domain: "cluster.local", Upstreams: []string{"1.1.1.1"}}},
		{"no domain", Config{Source: src, Upstreams: []string{"1.1.1.1"}}},
		{"bad listen address", Config{Domain: "cluster.local", Source: src, Upstreams: []string{"1.1.1.1"}, Listen: []string{"localhost:53"}}},
		{"bad upstream", Config{Domain: "cluster.local", Source: src, Upstreams: []string{"dns.google"}}},
		{"missing resolv.conf", Config{Domain: "cluster.local", Source: src, ResolvConf: t.TempDir() + "/nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	content := strings.Join([]string{
		"# generated",
		"search example.org",
		"nameserver 10.42.0.1",
		"nameserver 192.0.2.53",
		"nameserver 127.0.0.53",
		"nameserver fe80::1%eth0",
		"nameserver 2001:db8::53",
		"nameserver not-an-ip",
		"options ndots:5",
	}, "\n")
	if err := writeFile(path, content); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		listen []string
		want   []string
		self   []string
	}{
		{"skips our own address", []string{"10.42.0.1:53"},
			[]string{"192.0.2.53:53", "127.0.0.53:53", "[fe80::1%eth0]:53", "[2001:db8::53]:53"}, nil},
		{"skips an address that reaches us", []string{"10.42.0.1:5353"},
			[]string{"10.42.0.1:53", "127.0.0.53:53", "[fe80::1%eth0]:53", "[2001:db8::53]:53"}, []string{"192.0.2.53:53"}},
		{"a wildcard listener is every loopback address", []string{"0.0.0.0:53"},
			[]string{"10.42.0.1:53", "192.0.2.53:53", "[fe80::1%eth0]:53", "[2001:db8::53]:53"}, nil},
		{"another port is not us", []string{"10.42.0.1:5353"},
			[]string{"10.42.0.1:53", "192.0.2.53:53", "127.0.0.53:53", "[fe80::1%eth0]:53", "[2001:db8::53]:53"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Domain: "cluster.local", Source: testSource(), ResolvConf: path, Listen: tc.listen, Self: tc.self})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Upstreams(); !slices.Equal(got, tc.want) {
				t.Fatalf("upstreams %q, want %q", got, tc.want)
			}
		})
	}
	s, err := New(Config{Domain: "cluster.local", Source: testSource(), ResolvConf: path, Upstreams: []string{"192.0.2.1", "192.0.2.2:5353"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Upstreams(), []string{"192.0.2.1:53", "192.0.2.2:5353"}; !slices.Equal(got, want) {
		t.Fatalf("configured upstreams %q, want %q", got, want)
	}
}

// FuzzAnswer feeds arbitrary packets to the handler: it must never panic
// (recovered panics show up as SERVFAIL, which the fuzzer reports).
func FuzzAnswer(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("web.default.svc.cluster.local.", dns.TypeA),
		query("_pg._tcp.db.data.svc.cluster.local.", dns.TypeSRV),
		query("10-42-0-1.default.pod.cluster.local.", dns.TypeA),
		query("ext.default.svc.cluster.local.", dns.TypeA),
		query("20.0.43.10.in-addr.arpa.", dns.TypePTR),
	} {
		b, _ := q.Pack()
		f.Add(b)
	}
	s := newTestServer(f, testSource())
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if req.Unpack(b) != nil {
			return
		}
		if len(req.Question) == 1 && !dns.IsSubDomain("cluster.local.", strings.ToLower(req.Question[0].Name)) {
			return // would be forwarded: nothing to learn without upstreams
		}
		r := s.Answer(req, false)
		if r == nil {
			return
		}
		if r.Rcode == dns.RcodeServerFailure {
			t.Fatalf("SERVFAIL (a recovered panic) for %v", req)
		}
		if _, err := r.Pack(); err != nil {
			t.Fatalf("answer to %v does not pack: %v", req, err)
		}
	})
}

// TestRunTCPAnswerOverSixtyFourKiB checks that an answer too big for one TCP
// message (a headless service with thousands of ready endpoints) is cut to
// fit and flagged truncated instead of never being sent, which left the
// client waiting on an open connection until its own timeout.
func TestRunTCPAnswerOverSixtyFourKiB(t *testing.T) {
	src := newFakeSource()
	var eps []ep
	for i := range 5000 {
		eps = append(eps, ep{addr: "10.42." + itoa(i/250) + "." + itoa(i%250)})
	}
	src.addService(service("default", "huge", []string{"None"}))
	src.addSlice("default", "huge", slice("IPv4", nil, eps...))
	addr := runServer(t, newTestServer(t, src))
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(query("huge.default.svc.cluster.local.", dns.TypeA), addr)
	if err != nil {
		t.Fatalf("TCP query for a service with 5000 endpoints: %v", err)
	}
	if !r.Truncated || len(r.Answer) == 0 {
		t.Fatalf("TCP answer: tc=%v with %d records, want a truncated, non-empty answer", r.Truncated, len(r.Answer))
	}
}
