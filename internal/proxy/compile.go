package proxy

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Names of the fixed objects of the table.
const (
	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	chainServices          = "services"
	chainMasquerading      = "masquerading"
	chainMarkMasq          = "mark-for-masquerade"
	chainEndpointsCheck    = "endpoints-check"
	chainReject            = "reject-chain"

	// masqMark is the packet mark bit that asks postrouting to masquerade.
	masqMark = 0x4000
	// DefaultTable is the table name when Config.Table is empty.
	DefaultTable = "mizzen"
)

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// part is the share of the ruleset that one service produces (or the
// fixed share, for the static part).
type part struct {
	chains   []*Chain
	sets     []*Set
	elements map[string][]Element // fixed map name -> elements
	udp      []udpPort            // the service's UDP ports, for conntrack cleanup
}

// udpPort is where one UDP service port sends traffic: conntrack entries
// from its frontends to an endpoint it no longer uses must be deleted, or
// a client that keeps its socket keeps reaching the old endpoint.
type udpPort struct {
	id        string
	frontends []netip.AddrPort // a zero address stands for the NodePort on any local address
	endpoints []netip.AddrPort
}

// compiler builds parts for one configuration.
type compiler struct {
	cfg Config
	cur *part // the part being built
}

// partCache remembers each service's part with the objects it came from.
// Informer caches hand out the same pointer until an object changes (their
// objects are never modified in place), so identical pointers mean the part
// can be reused.
type partCache map[string]cachedPart

type cachedPart struct {
	svc    *corev1.Service
	slices []*discoveryv1.EndpointSlice
	part   *part
}

// Compile builds the desired ruleset from the cache (pure, no I/O).
func Compile(cfg Config, services []*corev1.Service, slices []*discoveryv1.EndpointSlice) *Ruleset {
	rs, _ := compileCached(cfg, services, slices, nil)
	return rs
}

// compileCached is Compile reusing the parts of unchanged services from
// old; it returns the cache for the next call.
func compileCached(cfg Config, services []*corev1.Service, epSlices []*discoveryv1.EndpointSlice, old partCache) (*Ruleset, partCache) {
	c := &compiler{cfg: cfg}
	static := c.static()
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range epSlices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		bySvc[s.Namespace+"/"+name] = append(bySvc[s.Namespace+"/"+name], s)
	}
	svcs := append([]*corev1.Service(nil), services...)
	sort.Slice(svcs, func(i, j int) bool {
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	next := make(partCache, len(svcs))
	parts := make([]*part, 0, len(svcs)+1)
	parts = append(parts, static)
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		own := bySvc[key]
		sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
		if e, ok := old[key]; ok && e.svc == svc && slices.Equal(e.slices, own) {
			next[key] = e
			parts = append(parts, e.part)
			continue
		}
		c.cur = &part{elements: map[string][]Element{}}
		c.service(svc, own)
		next[key] = cachedPart{svc: svc, slices: own, part: c.cur}
		parts = append(parts, c.cur)
	}
	return assemble(cfg.table(), parts), next
}

// assemble joins parts into a ruleset. A map key claimed twice (two
// services with the same external IP and port) goes to the first service.
func assemble(table string, parts []*part) *Ruleset {
	rs := &Ruleset{Table: table}
	fixed := []*Set{
		{Name: mapServiceIPs, Key: KeyAddrProtoPort, Map: true},
		{Name: mapServiceNodePorts, Key: KeyProtoPort, Map: true},
		{Name: mapNoEndpointServices, Key: KeyAddrProtoPort, Map: true},
		{Name: mapNoEndpointNodePorts, Key: KeyProtoPort, Map: true},
	}
	rs.Sets = append(rs.Sets, fixed...)
	seen := map[elemKey]bool{}
	for _, m := range fixed {
		for _, p := range parts {
			for _, e := range p.elements[m.Name] {
				// The two service maps share keys with the two no-endpoint maps.
				k := keyOf(e)
				if m.Key == KeyProtoPort {
					k.addr = [4]byte{255, 255, 255, 255}
				}
				if seen[k] {
					continue
				}
				seen[k] = true
				m.Elements = append(m.Elements, e)
			}
		}
	}
	for _, p := range parts {
		rs.Chains = append(rs.Chains, p.chains...)
		rs.Sets = append(rs.Sets, p.sets...)
	}
	return rs
}

func (cfg Config) table() string {
	if cfg.Table == "" {
		return DefaultTable
	}
	return cfg.Table
}

func (c *compiler) addSet(s *Set) *Set {
	c.cur.sets = append(c.cur.sets, s)
	return s
}

func (c *compiler) addChain(name string, hook *Hook, rules ...Rule) *Chain {
	ch := &Chain{Name: name, Hook: hook, Rules: rules}
	c.cur.chains = append(c.cur.chains, ch)
	return ch
}

func (c *compiler) addElement(set string, e Element) {
	c.cur.elements[set] = append(c.cur.elements[set], e)
}

func (c *compiler) clusterCIDR() (netip.Prefix, bool) {
	p := c.cfg.ClusterCIDR
	return p.Masked(), p.IsValid() && p.Addr().Is4()
}

// static returns the base chains and the helper chains every table has.
func (c *compiler) static() *part {
	c.cur = &part{}

	ctNewCheck := Rule{MatchCtNew{}, Jump(chainEndpointsCheck)}
	c.addChain("nat-prerouting", &Hook{"nat", "prerouting", -100}, Rule{Jump(chainServices)})
	c.addChain("nat-output", &Hook{"nat", "output", -100}, Rule{Jump(chainServices)})
	c.addChain("nat-postrouting", &Hook{"nat", "postrouting", 100}, Rule{Jump(chainMasquerading)})
	c.addChain("filter-input", &Hook{"filter", "input", -1}, ctNewCheck)
	c.addChain("filter-forward", &Hook{"filter", "forward", -1}, ctNewCheck)
	c.addChain("filter-output", &Hook{"filter", "output", -1}, ctNewCheck)

	notLoopback := MatchAddr{Dst: true, Not: true, Prefix: loopback}
	var svcRules []Rule
	if d, t := c.cfg.ClusterDNS, c.cfg.DNSTarget; d.Is4() && t.IsValid() && t.Addr().Is4() {
		dst := MatchAddr{Dst: true, Prefix: netip.PrefixFrom(d, 32)}
		for _, p := range []uint8{protoUDP, protoTCP} {
			svcRules = append(svcRules, Rule{dst, MatchProto{p}, MatchPort{53}, DNAT{t}})
		}
	}
	svcRules = append(svcRules,
		Rule{VmapLookup{KeyAddrProtoPort, mapServiceIPs}},
		Rule{MatchFibLocal{}, notLoopback, VmapLookup{KeyProtoPort, mapServiceNodePorts}})
	c.addChain(chainServices, nil, svcRules...)
	c.addChain(chainEndpointsCheck, nil,
		Rule{VmapLookup{KeyAddrProtoPort, mapNoEndpointServices}},
		Rule{MatchFibLocal{}, notLoopback, VmapLookup{KeyProtoPort, mapNoEndpointNodePorts}})

	masq := []Rule{{MatchMark{masqMark}, SetMark{Mark: masqMark, Xor: true}, Masquerade{}}}
	if cidr, ok := c.clusterCIDR(); ok {
		// Pod egress: leaving the pod network is masqueraded, pod to pod is not.
		masq = append(masq, Rule{MatchAddr{Prefix: cidr}, MatchAddr{Dst: true, Not: true, Prefix: cidr}, Masquerade{}})
	}
	c.addChain(chainMasquerading, nil, masq...)
	c.addChain(chainMarkMasq, nil, Rule{SetMark{Mark: masqMark}})
	c.addChain(chainReject, nil, Rule{MatchProto{protoTCP}, Reject{TCP: true}}, Rule{Reject{}})
	return c.cur
}

// endpoint is one ready backend of a service port.
type endpoint struct {
	addr  netip.Addr
	port  uint16
	local bool
}

func (e endpoint) addrPort() netip.AddrPort { return netip.AddrPortFrom(e.addr, e.port) }

func (c *compiler) service(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	clusterIPs := ipv4s(svc.Spec.ClusterIPs)
	if len(svc.Spec.ClusterIPs) == 0 {
		clusterIPs = ipv4s([]string{svc.Spec.ClusterIP})
	}
	if len(clusterIPs) == 0 { // headless, IPv6-only or not allocated yet
		return
	}
	var externalIPs []netip.Addr
	externalIPs = append(externalIPs, ipv4s(svc.Spec.ExternalIPs)...)
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			externalIPs = append(externalIPs, ipv4s([]string{in.IP})...)
		}
	}
	for _, sp := range svc.Spec.Ports {
		c.servicePort(svc, sp, clusterIPs, externalIPs, slices)
	}
}

func ipv4s(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			out = append(out, a)
		}
	}
	return out
}

func protoNumber(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return protoUDP
	case corev1.ProtocolSCTP:
		return protoSCTP
	}
	return protoTCP
}

func (c *compiler) servicePort(svc *corev1.Service, sp corev1.ServicePort, clusterIPs, externalIPs []netip.Addr, slices []*discoveryv1.EndpointSlice) {
	proto := protoNumber(sp.Protocol)
	id := svc.Namespace + "/" + svc.Name + "/" + protoName(proto)
	if sp.Name != "" {
		id += "/" + sp.Name
	}
	port := uint16(sp.Port)
	nodePort := uint16(0)
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		nodePort = uint16(sp.NodePort)
	}
	hasExternal := nodePort != 0 || len(externalIPs) > 0
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := hasExternal && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal

	all, local := c.endpoints(sp, slices)
	if proto == protoUDP {
		u := udpPort{id: id}
		for _, ip := range append(append([]netip.Addr(nil), clusterIPs...), externalIPs...) {
			u.frontends = append(u.frontends, netip.AddrPortFrom(ip, port))
		}
		if nodePort != 0 {
			u.frontends = append(u.frontends, netip.AddrPortFrom(netip.Addr{}, nodePort))
		}
		for _, e := range append(append([]endpoint(nil), all...), local...) {
			u.endpoints = append(u.endpoints, e.addrPort())
		}
		c.cur.udp = append(c.cur.udp, u)
	}
	if len(all) == 0 {
		reject := Goto(chainReject)
		for _, ip := range append(append([]netip.Addr(nil), clusterIPs...), externalIPs...) {
			c.addElement(mapNoEndpointServices, Element{Addr: ip, Proto: proto, Port: port, Verdict: reject})
		}
		if nodePort != 0 {
			c.addElement(mapNoEndpointNodePorts, Element{Proto: proto, Port: nodePort, Verdict: reject})
		}
		return
	}

	var timeout time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		timeout = time.Duration(corev1.DefaultClientIPServiceAffinitySeconds) * time.Second
		if cfg := svc.Spec.SessionAffinityConfig; cfg != nil && cfg.ClientIP != nil && cfg.ClientIP.TimeoutSeconds != nil {
			timeout = time.Duration(*cfg.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	epChains := map[netip.AddrPort]string{}
	for _, e := range append(append([]endpoint(nil), all...), local...) {
		if _, ok := epChains[e.addrPort()]; !ok {
			epChains[e.addrPort()] = c.endpointChain(id, proto, e, timeout)
		}
	}

	svcChain := chainName("svc", id)
	var svcRules []Rule
	if cidr, ok := c.clusterCIDR(); ok {
		svcRules = append(svcRules, Rule{MatchAddr{Not: true, Prefix: cidr}, Jump(chainMarkMasq)})
	}
	c.addChain(svcChain, nil, append(svcRules, c.balance(svcChain, all, epChains, timeout)...)...)
	localChain := ""
	if (internalLocal || externalLocal) && len(local) > 0 {
		localChain = chainName("svl", id)
		c.addChain(localChain, nil, c.balance(localChain, local, epChains, timeout)...)
	}

	for _, ip := range clusterIPs {
		e := Element{Addr: ip, Proto: proto, Port: port, Verdict: Goto(svcChain)}
		switch {
		case !internalLocal:
			c.addElement(mapServiceIPs, e)
		case localChain != "":
			e.Verdict = Goto(localChain)
			c.addElement(mapServiceIPs, e)
		default: // endpoints exist, but none on this node
			e.Verdict = Verdict{Kind: VerdictDrop}
			c.addElement(mapNoEndpointServices, e)
		}
	}
	if !hasExternal {
		return
	}
	extChain := chainName("ext", id)
	var ext []Rule
	if !externalLocal {
		ext = []Rule{{Jump(chainMarkMasq)}, {Goto(svcChain)}}
	} else {
		// Local policy keeps the client's source address, so only local
		// endpoints may answer; pods and the host itself still reach the service.
		if cidr, ok := c.clusterCIDR(); ok {
			ext = append(ext, Rule{MatchAddr{Prefix: cidr}, Goto(svcChain)})
		}
		ext = append(ext, Rule{MatchFibLocal{Src: true}, Jump(chainMarkMasq)}, Rule{MatchFibLocal{Src: true}, Goto(svcChain)})
		if localChain != "" {
			ext = append(ext, Rule{Goto(localChain)})
		} else {
			ext = append(ext, Rule{Verdict{Kind: VerdictDrop}})
		}
	}
	c.addChain(extChain, nil, ext...)
	for _, ip := range externalIPs {
		c.addElement(mapServiceIPs, Element{Addr: ip, Proto: proto, Port: port, Verdict: Goto(extChain)})
	}
	if nodePort != 0 {
		c.addElement(mapServiceNodePorts, Element{Proto: proto, Port: nodePort, Verdict: Goto(extChain)})
	}
}

// balance returns the rules that spread new connections over eps, keeping
// clients on their endpoint when session affinity is on.
func (c *compiler) balance(chain string, eps []endpoint, chains map[netip.AddrPort]string, affinity time.Duration) []Rule {
	var rules []Rule
	m := c.addSet(&Set{Name: chainName("eps", chain), Key: KeyIndex, Map: true})
	for i, e := range eps {
		ep := chains[e.addrPort()]
		m.Elements = append(m.Elements, Element{Port: uint16(i), Verdict: Goto(ep)})
		if affinity > 0 {
			rules = append(rules, Rule{MatchSaddrInSet{affinitySet(ep)}, Goto(ep)})
		}
	}
	return append(rules, Rule{NumgenVmap{N: len(eps), Map: m.Name}})
}

// jumpMarkMasq is boxed once: endpoint chains are the bulk of a ruleset.
var jumpMarkMasq Stmt = Jump(chainMarkMasq)

func (c *compiler) endpointChain(svcID string, proto uint8, e endpoint, affinity time.Duration) string {
	name := chainName("ep", string(e.addrPort().AppendTo([]byte(svcID+"__"))))
	stmts := make([]Stmt, 4, 5)
	stmts[0], stmts[1] = MatchAddr{Prefix: netip.PrefixFrom(e.addr, 32)}, jumpMarkMasq // hairpin
	stmts[2], stmts[3] = MatchProto{proto}, DNAT{e.addrPort()}
	rules := []Rule{stmts[0:2:2], stmts[2:4:4]}
	if affinity > 0 {
		set := affinitySet(name)
		c.addSet(&Set{Name: set, Key: KeyAddr, Dynamic: true})
		rules = []Rule{rules[0], {UpdateSaddr{Set: set, Timeout: affinity}}, rules[1]}
	}
	c.addChain(name, nil, rules...)
	return name
}

// endpoints returns the usable endpoints of a service port and the subset
// on this node. Ready endpoints are used; when there are none, serving but
// terminating ones are, as kube-proxy does.
func (c *compiler) endpoints(sp corev1.ServicePort, slices []*discoveryv1.EndpointSlice) (all, local []endpoint) {
	var ready, terminating []endpoint
	seen := map[netip.AddrPort]bool{}
	for _, s := range slices {
		port, ok := slicePort(s, sp)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			isReady := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			isServingTerm := ep.Conditions.Serving != nil && *ep.Conditions.Serving &&
				ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			if !isReady && !isServingTerm {
				continue
			}
			isLocal := ep.NodeName != nil && *ep.NodeName == c.cfg.NodeName && c.cfg.NodeName != ""
			for _, a := range ipv4s(ep.Addresses) {
				e := endpoint{addr: a, port: port, local: isLocal}
				if seen[e.addrPort()] {
					continue
				}
				seen[e.addrPort()] = true
				if isReady {
					ready = append(ready, e)
				} else {
					terminating = append(terminating, e)
				}
			}
		}
	}
	sortEndpoints(ready)
	sortEndpoints(terminating)
	all = ready
	if len(all) == 0 {
		all = terminating
	}
	local = localOnly(ready)
	if len(local) == 0 {
		local = localOnly(terminating)
	}
	return all, local
}

func slicePort(s *discoveryv1.EndpointSlice, sp corev1.ServicePort) (uint16, bool) {
	for _, p := range s.Ports {
		name, proto := "", corev1.ProtocolTCP
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if name == sp.Name && protoNumber(proto) == protoNumber(sp.Protocol) && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

func sortEndpoints(eps []endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if c := eps[i].addr.Compare(eps[j].addr); c != 0 {
			return c < 0
		}
		return eps[i].port < eps[j].port
	})
}

func localOnly(eps []endpoint) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if e.local {
			out = append(out, e)
		}
	}
	return out
}
