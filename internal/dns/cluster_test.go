package dns

import (
	"net"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestClusterAnswers(t *testing.T) {
	s := newTestServer(t, testSource())
	s.serial = 42
	const soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local."
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
		soa    bool // a SOA is expected in authority
	}{
		{name: "service A is its ClusterIP", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
		{name: "query name case is kept and matched insensitively", qname: "WeB.DeFault.SVC.Cluster.Local.", qtype: dns.TypeA,
			answer: []string{"WeB.DeFault.SVC.Cluster.Local. 5 IN A 10.43.0.20"}},
		{name: "IPv4-only service has no AAAA", qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA, soa: true},
		{name: "dual-stack service A", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"dual.default.svc.cluster.local. 5 IN A 10.43.0.21"}},
		{name: "dual-stack service AAAA", qname: "dual.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"dual.default.svc.cluster.local. 5 IN AAAA fd00::21"}},
		{name: "IPv6-only service AAAA", qname: "six.default.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"six.default.svc.cluster.local. 5 IN AAAA fd00::22"}},
		{name: "IPv6-only service has no A", qname: "six.default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "unknown service is NXDOMAIN with SOA", qname: "nope.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "unknown namespace is NXDOMAIN", qname: "web.nope.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "namespace name is empty NOERROR", qname: "default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "svc name is empty NOERROR", qname: "svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "unknown top-level name in zone is NXDOMAIN", qname: "foo.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "too many labels is NXDOMAIN", qname: "a.b._http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "zone apex SOA", qname: "cluster.local.", qtype: dns.TypeSOA,
			answer: []string{soa + " 42 7200 1800 86400 5"}},
		{name: "dns-version TXT", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 5 IN TXT "1.1.0"`}},
		{name: "named port SRV", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
		{name: "named UDP port SRV", qname: "_dns._udp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."},
			extra:  []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
		{name: "port with the wrong protocol is NXDOMAIN", qname: "_http._udp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, soa: true},
		{name: "unknown port is NXDOMAIN", qname: "_ftp._tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, soa: true},
		{name: "named port A is empty NOERROR", qname: "_http._tcp.web.default.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "protocol label is an empty non-terminal", qname: "_tcp.web.default.svc.cluster.local.", qtype: dns.TypeSRV, soa: true},
		{name: "service SRV lists every port", qname: "web.default.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"web.default.svc.cluster.local. 5 IN SRV 0 50 53 web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN SRV 0 50 80 web.default.svc.cluster.local.",
			},
			extra: []string{"web.default.svc.cluster.local. 5 IN A 10.43.0.20"}},
		{name: "headless A is the ready endpoints", qname: "db.data.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{
				"db.data.svc.cluster.local. 5 IN A 10.42.0.5",
				"db.data.svc.cluster.local. 5 IN A 10.42.0.6",
				"db.data.svc.cluster.local. 5 IN A 10.42.0.7",
			}},
		{name: "headless AAAA", qname: "db.data.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"db.data.svc.cluster.local. 5 IN AAAA fd00:42::5"}},
		{name: "headless endpoint hostname", qname: "db-1.db.data.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-1.db.data.svc.cluster.local. 5 IN A 10.42.0.6"}},
		{name: "headless endpoint hostname AAAA", qname: "db-0.db.data.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"db-0.db.data.svc.cluster.local. 5 IN AAAA fd00:42::5"}},
		{name: "endpoint without hostname by dashed IP", qname: "10-42-0-7.db.data.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-0-7.db.data.svc.cluster.local. 5 IN A 10.42.0.7"}},
		{name: "not-ready endpoint is not published", qname: "db-2.db.data.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "endpoint with hostname is not named by IP", qname: "10-42-0-5.db.data.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "headless named port SRV targets each endpoint", qname: "_pg._tcp.db.data.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_pg._tcp.db.data.svc.cluster.local. 5 IN SRV 0 33 15432 10-42-0-7.db.data.svc.cluster.local.",
				"_pg._tcp.db.data.svc.cluster.local. 5 IN SRV 0 33 15432 db-0.db.data.svc.cluster.local.",
				"_pg._tcp.db.data.svc.cluster.local. 5 IN SRV 0 33 15432 db-1.db.data.svc.cluster.local.",
			},
			extra: []string{
				"10-42-0-7.db.data.svc.cluster.local. 5 IN A 10.42.0.7",
				"db-0.db.data.svc.cluster.local. 5 IN A 10.42.0.5",
				"db-0.db.data.svc.cluster.local. 5 IN AAAA fd00:42::5",
				"db-1.db.data.svc.cluster.local. 5 IN A 10.42.0.6",
			}},
		{name: "headless without endpoints is empty NOERROR", qname: "lonely.data.svc.cluster.local.", qtype: dns.TypeA, soa: true},
		{name: "publishNotReadyAddresses publishes not-ready endpoints", qname: "p-0.pub.data.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"p-0.pub.data.svc.cluster.local. 5 IN A 10.42.1.9"}},
		{name: "ExternalName is a CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeCNAME,
			answer: []string{"ext.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local."}},
		{name: "ExternalName A follows the CNAME", qname: "ext.default.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{
				"ext.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
				"web.default.svc.cluster.local. 5 IN A 10.43.0.20",
			}},
		{name: "pod A from its dashed IP", qname: "10-42-3-4.default.pod.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-42-3-4.default.pod.cluster.local. 5 IN A 10.42.3.4"}},
		{name: "pod AAAA from its dashed IPv6", qname: "fd00-42--3.default.pod.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00-42--3.default.pod.cluster.local. 5 IN AAAA fd00:42::3"}},
		{name: "IPv4 pod has no AAAA", qname: "10-42-3-4.default.pod.cluster.local.", qtype: dns.TypeAAAA, soa: true},
		{name: "bad pod IP is NXDOMAIN", qname: "10-42-3-400.default.pod.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "pod name with extra labels is NXDOMAIN", qname: "x.10-42-3-4.default.pod.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, soa: true},
		{name: "PTR of a ClusterIP", qname: "20.0.43.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"20.0.43.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}},
		{name: "PTR of an IPv6 ClusterIP", qname: "2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR six.default.svc.cluster.local."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Answer(query(tc.qname, tc.qtype), false)
			if resp.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode], resp)
			}
			if !resp.Authoritative || !resp.RecursionAvailable {
				t.Errorf("aa=%v ra=%v, want both", resp.Authoritative, resp.RecursionAvailable)
			}
			if got := rrs(resp.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer\n%q\nwant\n%q", got, tc.answer)
			}
			if got := rrs(resp.Extra); !slices.Equal(got, tc.extra) {
				t.Errorf("extra\n%q\nwant\n%q", got, tc.extra)
			}
			gotSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA && resp.Ns[0].Header().Name == "cluster.local."
			if gotSOA != tc.soa || (!tc.soa && len(resp.Ns) > 0) {
				t.Errorf("authority %v, want SOA: %v", resp.Ns, tc.soa)
			}
			if gotSOA && resp.Ns[0].(*dns.SOA).Minttl != 5 {
				t.Errorf("SOA minimum %d, want 5", resp.Ns[0].(*dns.SOA).Minttl)
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("answer does not pack: %v", err)
			}
		})
	}
}

// TestAnswersFollowTheSource checks that a changed cache shows at once (no
// caching of cluster answers inside the server).
func TestAnswersFollowTheSource(t *testing.T) {
	src := newFakeSource()
	s := newTestServer(t, src)
	q := query("late.default.svc.cluster.local.", dns.TypeA)
	if r := s.Answer(q, false); r.Rcode != dns.RcodeNameError {
		t.Fatalf("before the service exists: %s", dns.RcodeToString[r.Rcode])
	}
	src.addService(service("default", "late", []string{"10.43.9.9"}))
	if r := s.Answer(q, false); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("after the service exists: %v", r)
	}
}

func TestMalformedQueriesGetErrors(t *testing.T) {
	s := newTestServer(t, testSource())
	noQuestion := new(dns.Msg)
	noQuestion.Id = 7
	twoQuestions := query("web.default.svc.cluster.local.", dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	notify := query("cluster.local.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	badVersion := query("web.default.svc.cluster.local.", dns.TypeA)
	badVersion.SetEdns0(1232, false)
	badVersion.IsEdns0().SetVersion(1)
	chaos := query("web.default.svc.cluster.local.", dns.TypeA)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	for _, tc := range []struct {
		name  string
		req   *dns.Msg
		rcode int
	}{
		{"no question", noQuestion, dns.RcodeFormatError},
		{"two questions", twoQuestions, dns.RcodeFormatError},
		{"not a query", notify, dns.RcodeNotImplemented},
		{"unknown EDNS version", badVersion, dns.RcodeBadVers},
		{"CHAOS class in the cluster zone", chaos, dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Answer(tc.req, false)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if _, err := r.Pack(); err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
		})
	}
	resp := query("web.default.svc.cluster.local.", dns.TypeA)
	resp.Response = true
	if r := s.Answer(resp, false); r != nil {
		t.Fatalf("answered a response: %v", r)
	}
}

func TestEDNSAndTruncation(t *testing.T) {
	src := newFakeSource()
	var eps []ep
	for i := range 200 {
		eps = append(eps, ep{addr: "10.42.7." + itoa(i)})
	}
	big := service("default", "big", []string{"None"})
	src.addService(big)
	src.addSlice("default", "big", slice("IPv4", nil, eps...))
	s := newTestServer(t, src)

	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	s.ServeDNS(w, query("big.default.svc.cluster.local.", dns.TypeA))
	if !w.msg.Truncated || w.msg.IsEdns0() != nil {
		t.Fatalf("plain UDP answer: tc=%v opt=%v, want truncated without OPT", w.msg.Truncated, w.msg.IsEdns0())
	}
	if b, _ := w.msg.Pack(); len(b) > dns.MinMsgSize {
		t.Fatalf("plain UDP answer is %d bytes", len(b))
	}

	edns := query("big.default.svc.cluster.local.", dns.TypeA)
	edns.SetEdns0(4096, true)
	s.ServeDNS(w, edns)
	opt := w.msg.IsEdns0()
	if opt == nil || !opt.Do() || opt.UDPSize() != ednsSize {
		t.Fatalf("EDNS answer OPT %v, want DO and size %d", opt, ednsSize)
	}
	if b, _ := w.msg.Pack(); len(b) > ednsSize {
		t.Fatalf("EDNS UDP answer is %d bytes", len(b))
	}

	w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	s.ServeDNS(w, query("big.default.svc.cluster.local.", dns.TypeA))
	if w.msg.Truncated || len(w.msg.Answer) != 200 {
		t.Fatalf("TCP answer: tc=%v %d answers, want all 200", w.msg.Truncated, len(w.msg.Answer))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestAddressAnswersAreShuffled checks that the addresses of a name with
// several (a headless service's endpoints, a forwarded name) come in a
// changing order, as CoreDNS's loadbalance plugin in the default Kubernetes
// Corefile does: clients that take the first address must spread over the
// endpoints instead of all hitting the same one.
func TestAddressAnswersAreShuffled(t *testing.T) {
	up := startUpstream(t, func(req *dns.Msg, tcp bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)})
		}
		return m
	})
	s := newTestServer(t, testSource(), up.addr)
	for _, tc := range []struct {
		qname string
		want  int
	}{
		{"db.data.svc.cluster.local.", 3},
		{"many.example.org.", 3},
	} {
		first := map[string]int{}
		for range 300 {
			r := s.Answer(query(tc.qname, dns.TypeA), false)
			if len(r.Answer) != tc.want {
				t.Fatalf("%s: %v", tc.qname, r.Answer)
			}
			first[r.Answer[0].(*dns.A).A.String()]++
		}
		if len(first) != tc.want {
			t.Errorf("%s: first address over 300 answers %v, want each of the %d addresses first sometimes", tc.qname, first, tc.want)
		}
	}
}
