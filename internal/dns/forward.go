package dns

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// forward answers a name outside the cluster from the cache or, on a miss,
// from the upstreams (one exchange per key in flight at a time).
func (s *Server) forward(q dns.Question, do, cd, tcp bool) result {
	key := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do, cd: cd}
	m, ok := s.cache.get(key, s.now())
	if !ok {
		v, err, _ := s.flight.Do(key.String(), func() (any, error) {
			m, err := s.exchange(key, tcp)
			if err != nil {
				return nil, err
			}
			s.cache.put(key, m, s.now())
			return m, nil
		})
		if err != nil {
			s.forwardFailed(q, err)
			return result{rcode: dns.RcodeServerFailure}
		}
		m = v.(*dns.Msg) // shared by every waiter: copied below, never changed
	}
	res := result{rcode: m.Rcode, ad: m.AuthenticatedData}
	res.answer = copyRRs(m.Answer, q.Name)
	res.ns = copyRRs(m.Ns, q.Name)
	res.extra = copyRRs(m.Extra, q.Name)
	return res
}

// warnEvery is how often a failure to forward is logged as a warning; the
// ones in between are logged at debug level.
const warnEvery = 30 * time.Second

// forwardFailed logs that no upstream answered q: as a warning at most
// once every warnEvery, so that an operator sees why names outside the
// cluster get SERVFAIL without a line per query.
func (s *Server) forwardFailed(q dns.Question, err error) {
	now := s.now().UnixNano()
	last := s.warned.Load()
	if (last == 0 || now-last >= int64(warnEvery)) && s.warned.CompareAndSwap(last, now) {
		s.log.Warnf("forward %s %s: %v (answered SERVFAIL; further failures within %s logged at debug level)", q.Name, dns.TypeToString[q.Qtype], err, warnEvery)
		return
	}
	s.log.Debugf("forward %s %s: %v", q.Name, dns.TypeToString[q.Qtype], err)
}

// copyRRs copies rrs without OPT, giving records owned by the query name
// the exact case the client asked with.
func copyRRs(rrs []dns.RR, qname string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		c := dns.Copy(rr)
		if h := c.Header(); h.Name != qname && strings.EqualFold(h.Name, qname) {
			h.Name = qname
		}
		out = append(out, c)
	}
	return out
}

// exchange asks each upstream in turn, over UDP (TCP when the client used
// TCP or the UDP answer was truncated), and returns the first answer that
// is not a server failure or refusal.
func (s *Server) exchange(key cacheKey, tcp bool) (*dns.Msg, error) {
	if len(s.upstreams) == 0 {
		return nil, errors.New("no upstream resolver")
	}
	m := new(dns.Msg)
	m.SetQuestion(key.name, key.qtype)
	m.Question[0].Qclass = key.qclass
	m.CheckingDisabled = key.cd
	m.SetEdns0(ednsSize, key.do)
	var last *dns.Msg
	var errs []error
	for _, up := range s.upstreams {
		r, err := exchangeOne(m, up, tcp)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", up, err))
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, errors.Join(errs...)
}

func exchangeOne(m *dns.Msg, upstream string, tcp bool) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: upstreamTimeout, UDPSize: ednsSize}
	if tcp {
		c.Net = "tcp"
	}
	r, _, err := c.Exchange(m, upstream)
	if err == nil && r.Truncated && c.Net == "udp" {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, upstream)
	}
	if err != nil {
		return nil, err
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) || r.Question[0].Qtype != m.Question[0].Qtype {
		return nil, errors.New("answer for another question")
	}
	return r, nil
}
