package dns

import (
	"math/rand/v2"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds how many CNAMEs (ExternalName services) one answer follows.
const maxChase = 8

// result is an answer before it is fitted to the client's request.
type result struct {
	rcode  int
	auth   bool // answered from the cluster zone
	ad     bool // authenticated data, from an upstream
	answer []dns.RR
	ns     []dns.RR
	extra  []dns.RR
}

// ServeDNS answers one query; it implements dns.Handler, so tests and
// benchmarks can drive the server without sockets.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	resp := s.Answer(req, tcp)
	if resp == nil {
		return
	}
	if tcp {
		// A TCP message carries at most 64 KiB: a bigger one is never
		// written at all and the client waits for it until it gives up.
		resp.Truncate(dns.MaxMsgSize)
	} else {
		resp.Truncate(udpLimit(req))
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debugf("write answer to %v: %v", w.RemoteAddr(), err)
	}
}

// Answer returns the reply to req as received over TCP or UDP (before any
// truncation to the client's UDP size), or nil when req is not a query to
// answer at all (a response).
func (s *Server) Answer(req *dns.Msg, tcp bool) (resp *dns.Msg) {
	if req == nil || req.Response {
		return nil
	}
	defer func() {
		// Defence in depth: a bug triggered by one odd query must not take
		// the node's DNS down.
		if r := recover(); r != nil {
			s.log.Errorf("panic answering %v: %v", req.Question, r)
			resp = new(dns.Msg)
			resp.SetRcode(req, dns.RcodeServerFailure)
		}
	}()
	resp = new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.SetRcode(req, dns.RcodeNotImplemented)
		return resp
	case len(req.Question) != 1:
		resp.SetRcode(req, dns.RcodeFormatError)
		return resp
	}
	opt := req.IsEdns0()
	if opt != nil && opt.Version() != 0 {
		resp.SetReply(req)
		resp.SetEdns0(ednsSize, false)
		resp.Rcode = dns.RcodeBadVers
		return resp
	}
	do := opt != nil && opt.Do()
	res := s.resolve(req.Question[0], do, req.CheckingDisabled, tcp, 0)

	resp.SetReply(req)
	resp.Rcode = res.rcode
	resp.Authoritative = res.auth
	resp.RecursionAvailable = true
	resp.AuthenticatedData = res.ad && (do || req.AuthenticatedData)
	resp.Answer, resp.Ns, resp.Extra = res.answer, res.ns, res.extra
	shuffleAddresses(resp.Answer)
	resp.Compress = true
	if opt != nil {
		resp.SetEdns0(ednsSize, do)
	}
	return resp
}

// resolve answers one question from the cluster or through the upstreams.
func (s *Server) resolve(q dns.Question, do, cd, tcp bool, depth int) result {
	lname := strings.ToLower(q.Name)
	if dns.IsSubDomain(s.zone, lname) {
		return s.cluster(q, lname, do, cd, tcp, depth)
	}
	if q.Qtype == dns.TypePTR {
		if res, ok := s.reverse(q, lname); ok {
			return res
		}
	}
	return s.forward(q, do, cd, tcp)
}

// udpLimit is the largest UDP answer the client of req accepts.
func udpLimit(req *dns.Msg) int {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, ednsSize)
}

// shuffleAddresses puts the A and AAAA records of an answer in a random
// order among the places they hold (CNAMEs stay first), as CoreDNS's
// loadbalance plugin does in the default Kubernetes Corefile, so clients
// that use the first address spread over a headless service's endpoints.
func shuffleAddresses(rrs []dns.RR) {
	if len(rrs) < 2 {
		return
	}
	var at []int
	for i, rr := range rrs {
		if t := rr.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
			at = append(at, i)
		}
	}
	rand.Shuffle(len(at), func(i, j int) {
		rrs[at[i]], rrs[at[j]] = rrs[at[j]], rrs[at[i]]
	})
}
