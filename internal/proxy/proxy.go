// Package proxy is mizzen's Service proxy: it compiles Services and
// EndpointSlices into one nftables table (ClusterIP, NodePort, session
// affinity, traffic policies, masquerading and the cluster DNS redirect) and
// keeps the kernel's table equal to it with atomic transactions.
package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Config is what the proxy needs to know about its node and cluster.
type Config struct {
	// NodeName identifies local endpoints, for the Local traffic policies.
	NodeName string
	// NodeIPs are the node's addresses. NodePorts answer on every local
	// address (`fib daddr type local`), which includes these.
	NodeIPs []netip.Addr
	// ClusterCIDR is the pod network: traffic to services from outside it is
	// masqueraded, and so is pod traffic leaving it.
	ClusterCIDR netip.Prefix
	// ClusterDNS (e.g. 10.43.0.10): UDP and TCP port 53 to it are DNATed to
	// DNSTarget before the service map.
	ClusterDNS netip.Addr
	// DNSTarget is the node-local DNS server; zero means no DNS rule.
	DNSTarget netip.AddrPort
	// Table is the nftables table (family ip); empty means "mizzen".
	Table string
	// FullResync is how often the whole table is rewritten even without a
	// failure; zero means one hour, as kube-proxy.
	FullResync time.Duration
	// MinInterval is the shortest time between two syncs in Run; zero means
	// 100 ms.
	MinInterval time.Duration
	// SyncPeriod is how often Run syncs without a change; zero means 30 s.
	SyncPeriod time.Duration
	Log        *logrus.Entry
}

// Proxier keeps the kernel's table equal to the compiled ruleset.
type Proxier struct {
	cfg     Config
	applier Applier
	log     *logrus.Entry
	now     func() time.Time

	// changed has room for one pending notification; Changed fills it and
	// Run drains it.
	changed chan struct{}

	// mu serializes Sync and guards the fields below.
	mu       sync.Mutex
	applied  *rendered // what the kernel holds; nil forces a full sync
	lastFull time.Time
	parts    partCache          // compiled services, reused while unchanged
	udp      map[string]udpPort // the UDP service ports the kernel holds
}

// New returns a proxier that manages its table in the current network
// namespace.
func New(cfg Config) (*Proxier, error) {
	if p := cfg.ClusterCIDR; p.IsValid() && !p.Addr().Is4() {
		return nil, fmt.Errorf("proxy: cluster CIDR %s is not IPv4: only IPv4 services are proxied", p)
	}
	if d := cfg.DNSTarget; d.IsValid() && (!d.Addr().Is4() || !cfg.ClusterDNS.Is4()) {
		return nil, fmt.Errorf("proxy: cluster DNS %s -> %s must both be IPv4", cfg.ClusterDNS, d)
	}
	return newProxier(cfg, netlinkApplier{netnsFd: -1}), nil
}

func newProxier(cfg Config, a Applier) *Proxier {
	if cfg.FullResync <= 0 {
		cfg.FullResync = time.Hour
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 100 * time.Millisecond
	}
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = 30 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Proxier{cfg: cfg, applier: a, log: log.WithField("component", "proxy"),
		now: time.Now, changed: make(chan struct{}, 1)}
}

// Sync compiles and applies: the first call, every FullResync period and
// the call after a failure replace the table atomically in one transaction;
// the others apply only the difference, also as one transaction.
func (p *Proxier) Sync(services []*corev1.Service, slices []*discoveryv1.EndpointSlice) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	rs, parts := compileCached(p.cfg, services, slices, p.parts)
	p.parts = parts
	next := render(rs)

	var ops []Op
	full := p.applied == nil || start.Sub(p.lastFull) >= p.cfg.FullResync
	if tc, ok := p.applier.(tableChecker); ok && !full {
		// Someone may have deleted the table (a host firewall's `nft flush
		// ruleset`): an empty difference would leave services broken until
		// the next full resync.
		if present, err := tc.hasTable(p.cfg.table()); err == nil && !present {
			p.log.Warn("nftables table deleted by someone else, rewriting it")
			full = true
		}
	}
	if !full {
		var ok bool
		ops, ok = incremental(p.applied, next)
		full = !ok
	}
	if full {
		ops = fullSync(next.rs)
		ops = append(ops, p.keptAffinity(next.rs)...)
	}
	if len(ops) == 0 {
		return nil
	}
	if err := p.applier.Apply(p.cfg.table(), ops); err != nil {
		p.applied = nil // the kernel's state is unknown: rewrite it next time
		return fmt.Errorf("sync table %s: %w", p.cfg.table(), err)
	}
	p.applied = next
	udp := udpPorts(parts)
	if stale := staleUDPFlows(p.udp, udp); len(stale) > 0 {
		if cc, ok := p.applier.(conntrackCleaner); ok {
			// As kube-proxy: a failure is logged, the rules are right anyway.
			if err := cc.clearUDP(stale); err != nil {
				p.log.WithError(err).Warn("delete conntrack entries of removed UDP endpoints")
			}
		}
	}
	p.udp = udp
	if full {
		p.lastFull = start
	}
	p.log.WithFields(logrus.Fields{"full": full, "ops": len(ops), "took": p.now().Sub(start)}).Debug("synced nftables")
	return nil
}

// Changed tells Run that the services or endpoint slices changed. It never
// blocks; bursts are coalesced into one sync.
func (p *Proxier) Changed() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Run syncs with list() at start, whenever Changed was called (at most once
// per MinInterval) and every SyncPeriod, retrying failures after a second.
// It returns nil when ctx ends, leaving the table in place as kube-proxy
// does, so established and new connections keep working across restarts.
func (p *Proxier) Run(ctx context.Context, list func() ([]*corev1.Service, []*discoveryv1.EndpointSlice)) error {
	const retry = time.Second
	period := time.NewTimer(0) // sync right away
	defer period.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.changed:
			if wait := p.cfg.MinInterval - p.now().Sub(last); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		case <-period.C:
		}
		// Drain a notification that arrived while waiting: this sync covers it.
		select {
		case <-p.changed:
		default:
		}
		last = p.now()
		next := p.cfg.SyncPeriod
		if err := p.Sync(list()); err != nil {
			p.log.WithError(err).Warn("nftables sync failed, retrying")
			next = retry
		}
		if !period.Stop() {
			select {
			case <-period.C:
			default:
			}
		}
		period.Reset(next)
	}
}

// Cleanup deletes the table (for `mizzen agent --cleanup` and uninstall);
// a missing table is not an error.
func Cleanup(table string) error {
	if table == "" {
		table = DefaultTable
	}
	return netlinkApplier{netnsFd: -1}.deleteTable(table)
}

// keptAffinity returns the ops that put the kernel's session affinity
// entries back into the dynamic sets a full sync recreates: kube-proxy never
// drops them, so clients keep their endpoint over restarts and resyncs.
func (p *Proxier) keptAffinity(rs *Ruleset) []Op {
	ar, ok := p.applier.(affinityReader)
	if !ok {
		return nil
	}
	var dynamic []*Set
	for _, s := range rs.Sets {
		if s.Dynamic {
			dynamic = append(dynamic, s)
		}
	}
	if len(dynamic) == 0 {
		return nil
	}
	have, err := ar.dynamicElements(p.cfg.table())
	if err != nil {
		p.log.WithError(err).Warn("read session affinity entries: clients may change endpoints")
		return nil
	}
	var ops []Op
	for _, s := range dynamic {
		if elems := have[s.Name]; len(elems) > 0 {
			ops = append(ops, Op{Kind: OpAddElements, Name: s.Name, Set: s, Elements: elems})
		}
	}
	return ops
}
