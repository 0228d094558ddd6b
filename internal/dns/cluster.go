package dns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// specVersion is the version of the Kubernetes DNS schema served at
// dns-version.<zone>.
const specVersion = "1.1.0"

// cluster answers a name inside the cluster zone; lname is q.Name lower-cased.
func (s *Server) cluster(q dns.Question, lname string, do, cd, tcp bool, depth int) result {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		return result{rcode: dns.RcodeRefused}
	}
	rel := strings.TrimSuffix(strings.TrimSuffix(lname, s.zone), ".")
	var labels []string
	if rel != "" {
		labels = dns.SplitDomainName(rel)
	}
	n := len(labels)
	switch {
	case n == 0:
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			return result{auth: true, answer: []dns.RR{s.soa(q.Name)}}
		}
		return s.nodata()
	case n == 1 && labels[0] == "dns-version":
		if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
			return result{auth: true, answer: []dns.RR{&dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT), Txt: []string{specVersion}}}}
		}
		return s.nodata()
	case labels[n-1] == "svc":
		return s.service(q, labels[:n-1], do, cd, tcp, depth)
	case labels[n-1] == "pod":
		return s.pod(q, labels[:n-1])
	}
	return s.nxdomain()
}

// service answers <...>.<name>.<ns>.svc.<zone>; labels end with <name>.<ns>.
func (s *Server) service(q dns.Question, labels []string, do, cd, tcp bool, depth int) result {
	n := len(labels)
	if n < 2 {
		// svc.<zone> and <ns>.svc.<zone>: namespaces are not looked up.
		return s.nodata()
	}
	ns, name := labels[n-1], labels[n-2]
	svc, ok := s.source.Service(ns, name)
	if !ok || n > 4 {
		return s.nxdomain()
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if n != 2 {
			return s.nxdomain()
		}
		return s.externalName(q, svc, do, cd, tcp, depth)
	}
	fqdn := name + "." + ns + ".svc." + s.zone
	switch n {
	case 2:
		switch q.Qtype {
		case dns.TypeSRV:
			return s.srv(q, svc, fqdn, svc.Spec.Ports)
		case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
			return s.addresses(q, svc)
		}
		return s.nodata()
	case 3:
		return s.endpointName(q, svc, labels[0])
	}
	// _<port>._<proto>.<name>.<ns>.svc.<zone>
	portName, ok1 := strings.CutPrefix(labels[0], "_")
	proto, ok2 := strings.CutPrefix(labels[1], "_")
	if !ok1 || !ok2 {
		return s.nxdomain()
	}
	var ports []corev1.ServicePort
	for _, p := range svc.Spec.Ports {
		if p.Name != "" && strings.EqualFold(p.Name, portName) && protocol(p.Protocol) == proto {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return s.nxdomain()
	}
	if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
		return s.nodata()
	}
	return s.srv(q, svc, fqdn, ports)
}

// addresses answers A/AAAA for a service name: its ClusterIPs, or the ready
// endpoints of a headless service.
func (s *Server) addresses(q dns.Question, svc *corev1.Service) result {
	var ips []netip.Addr
	if isHeadless(svc) {
		for _, ep := range s.endpoints(svc) {
			ips = append(ips, ep.addr)
		}
	} else {
		ips = clusterIPs(svc)
	}
	res := result{auth: true}
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if wants(q.Qtype, ip) && !seen[ip] {
			seen[ip] = true
			res.answer = append(res.answer, addrRR(q.Name, ip))
		}
	}
	if len(res.answer) == 0 {
		return s.nodata()
	}
	return res
}

// endpointName answers <label>.<svc>.<ns>.svc.<zone>: an endpoint's
// hostname (or dashed IP when it has none), or the empty non-terminal
// _<proto> above named-port SRV records.
func (s *Server) endpointName(q dns.Question, svc *corev1.Service, label string) result {
	if proto, ok := strings.CutPrefix(label, "_"); ok {
		for _, p := range svc.Spec.Ports {
			if p.Name != "" && protocol(p.Protocol) == proto {
				return s.nodata()
			}
		}
		return s.nxdomain()
	}
	found := false
	res := result{auth: true}
	for _, ep := range s.endpoints(svc) {
		if ep.host != label {
			continue
		}
		found = true
		if wants(q.Qtype, ep.addr) {
			res.answer = append(res.answer, addrRR(q.Name, ep.addr))
		}
	}
	switch {
	case !found:
		return s.nxdomain()
	case len(res.answer) == 0:
		return s.nodata()
	}
	return res
}

// srv answers SRV records for the given ports of svc: one per port with the
// service as target, or for a headless service one per ready endpoint and
// port with the endpoint's name as target; addresses go in additional.
func (s *Server) srv(q dns.Question, svc *corev1.Service, fqdn string, ports []corev1.ServicePort) result {
	res := result{auth: true}
	if !isHeadless(svc) {
		for _, p := range ports {
			res.answer = append(res.answer, srvRR(q.Name, uint16(p.Port), fqdn))
		}
		if len(res.answer) > 0 {
			for _, ip := range clusterIPs(svc) {
				res.extra = append(res.extra, addrRR(fqdn, ip))
			}
		}
	} else {
		for _, ep := range s.endpoints(svc) {
			target := ep.host + "." + fqdn
			matched := false
			for _, p := range ports {
				for _, epp := range ep.ports {
					if epp.Port == nil || deref(epp.Name) != p.Name || protocol(derefProto(epp.Protocol)) != protocol(p.Protocol) {
						continue
					}
					matched = true
					// An endpoint with an IPv4 and an IPv6 address is one target.
					if rr := srvRR(q.Name, uint16(*epp.Port), target); !containsRR(res.answer, rr) {
						res.answer = append(res.answer, rr)
					}
				}
			}
			if matched {
				res.extra = append(res.extra, addrRR(target, ep.addr))
			}
		}
	}
	if len(res.answer) == 0 {
		return s.nodata()
	}
	weight := uint16(max(1, 100/len(res.answer)))
	for _, rr := range res.answer {
		rr.(*dns.SRV).Weight = weight
	}
	return res
}

// externalName answers an ExternalName service with a CNAME, followed (for
// other types than CNAME) by the answer for its target.
func (s *Server) externalName(q dns.Question, svc *corev1.Service, do, cd, tcp bool, depth int) result {
	target := dns.Fqdn(strings.ToLower(svc.Spec.ExternalName))
	if _, ok := dns.IsDomainName(target); !ok || svc.Spec.ExternalName == "" {
		return s.nodata()
	}
	cname := &dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: target}
	res := result{auth: true, answer: []dns.RR{cname}}
	if q.Qtype == dns.TypeCNAME || depth >= maxChase {
		return res
	}
	next := s.resolve(dns.Question{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}, do, cd, tcp, depth+1)
	res.rcode = next.rcode
	res.answer = append(res.answer, next.answer...)
	res.ns = next.ns
	res.extra = next.extra
	return res
}

// pod answers <a-b-c-d>.<ns>.pod.<zone> with the address in its first label.
func (s *Server) pod(q dns.Question, labels []string) result {
	switch len(labels) {
	case 0, 1:
		return s.nodata()
	case 2:
	default:
		return s.nxdomain()
	}
	ip, ok := parseDashed(labels[0])
	if !ok {
		return s.nxdomain()
	}
	if !wants(q.Qtype, ip) {
		return s.nodata()
	}
	return result{auth: true, answer: []dns.RR{addrRR(q.Name, ip)}}
}

// reverse answers a PTR query for a ClusterIP when the source can look
// services up by IP; ok is false when the name is not a ClusterIP.
func (s *Server) reverse(q dns.Question, lname string) (result, bool) {
	rs, ok := s.source.(ReverseSource)
	if !ok {
		return result{}, false
	}
	ip, ok := parseReverse(lname)
	if !ok {
		return result{}, false
	}
	svc, ok := rs.ServiceByClusterIP(ip.String())
	if !ok {
		return result{}, false
	}
	target := svc.Name + "." + svc.Namespace + ".svc." + s.zone
	return result{auth: true, answer: []dns.RR{&dns.PTR{Hdr: hdr(q.Name, dns.TypePTR), Ptr: target}}}, true
}

func (s *Server) soa(name string) dns.RR {
	return &dns.SOA{
		Hdr:     hdr(name, dns.TypeSOA),
		Ns:      "ns.dns." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  s.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// nxdomain is the authoritative answer for a cluster name that does not
// exist; the SOA lets clients cache it for ttl seconds.
func (s *Server) nxdomain() result {
	return result{rcode: dns.RcodeNameError, auth: true, ns: []dns.RR{s.soa(s.zone)}}
}

// nodata is the authoritative answer for a name that exists without records
// of the type asked.
func (s *Server) nodata() result {
	return result{auth: true, ns: []dns.RR{s.soa(s.zone)}}
}
