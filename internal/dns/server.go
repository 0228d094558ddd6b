// Package dns is the cluster DNS server the agent runs on each node. It
// answers names in the cluster domain (services, headless endpoints, pods)
// from the agent's informer cache, following the Kubernetes DNS-based
// service discovery specification, and forwards every other name to the
// host's upstream resolvers through a TTL-honouring cache.
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Source is the informer cache the server answers from.
type Source interface {
	// Service returns the service namespace/name, if it exists.
	Service(namespace, name string) (*corev1.Service, bool)
	// EndpointSlices returns the discovery.k8s.io/v1 slices of a service
	// (label kubernetes.io/service-name).
	EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
}

// ReverseSource is optionally implemented by a Source that can find a
// service by one of its ClusterIPs; with it the server answers PTR queries
// for ClusterIPs instead of forwarding them.
type ReverseSource interface {
	ServiceByClusterIP(ip string) (*corev1.Service, bool)
}

// Config is what a Server needs.
type Config struct {
	// Domain is the cluster domain, e.g. "cluster.local".
	Domain string
	// Source is the informer cache answers come from.
	Source Source
	// Listen are the addresses served, over UDP and TCP each, e.g. "10.42.0.1:53".
	Listen []string
	// Upstreams are "ip:port" resolvers for names outside the cluster
	// domain; when empty they are read from ResolvConf.
	Upstreams []string
	// ResolvConf is read for nameservers when Upstreams is empty; default /etc/resolv.conf.
	ResolvConf string
	// Self are more "ip:port" addresses that reach this server (e.g. the
	// cluster DNS Service's, DNATed to it), skipped as upstreams.
	Self []string
	// CacheSize bounds the number of forwarded answers cached; default 10000.
	CacheSize int
	// Log receives the server's logs.
	Log *logrus.Entry
}

const (
	// ttl is the TTL of every record answered from the cluster (as CoreDNS).
	ttl = 5
	// upstreamTimeout bounds one exchange with one upstream.
	upstreamTimeout = 2 * time.Second
	// ednsSize is the UDP payload size advertised upstream and to clients.
	ednsSize         = 1232
	defaultCacheSize = 10000
)

// Server is a cluster DNS server. It is safe for concurrent use.
type Server struct {
	zone      string // lower-case FQDN of the cluster domain
	source    Source
	listen    []string
	upstreams []string
	log       *logrus.Entry
	serial    uint32
	now       func() time.Time // injectable clock for the cache
	cache     *cache
	flight    singleflight.Group
	warned    atomic.Int64 // when a forward failure was last logged as a warning (unix ns)

	started atomic.Bool   // set by the one call to Run
	mu      sync.Mutex    // guards addrs
	addrs   []string      // bound addresses, set by Run before ready closes
	ready   chan struct{} // closed by Run once every listener is bound
}

// New checks cfg and builds a Server; it does not listen until Run.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("dns: no source")
	}
	domain := strings.Trim(strings.ToLower(cfg.Domain), ".")
	if domain == "" {
		return nil, errors.New("dns: no cluster domain")
	}
	if _, ok := dns.IsDomainName(domain); !ok {
		return nil, fmt.Errorf("dns: invalid cluster domain %q", cfg.Domain)
	}
	for _, l := range cfg.Listen {
		host, _, err := net.SplitHostPort(l)
		if err != nil || net.ParseIP(host) == nil {
			return nil, fmt.Errorf("dns: listen address %q is not ip:port", l)
		}
	}
	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	ups := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		addr, err := hostPort(u)
		if err != nil {
			return nil, fmt.Errorf("dns: upstream %q: %w", u, err)
		}
		ups = append(ups, addr)
	}
	if len(ups) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		var err error
		ups, err = readResolvConf(path, append(append([]string(nil), cfg.Listen...), cfg.Self...))
		if err != nil {
			return nil, fmt.Errorf("dns: upstreams: %w", err)
		}
		if len(ups) == 0 {
			log.Warnf("no usable nameserver in %s: names outside %s will get SERVFAIL", path, domain)
		}
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	return &Server{
		zone:      dns.Fqdn(domain),
		source:    cfg.Source,
		listen:    cfg.Listen,
		upstreams: ups,
		log:       log,
		serial:    uint32(time.Now().Unix()),
		now:       time.Now,
		cache:     newCache(size),
		ready:     make(chan struct{}),
	}, nil
}

// Ready is closed once Run has bound every listener.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the bound "ip:port" addresses (UDP and TCP share the port),
// in the order of Config.Listen; it is empty before Ready.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Upstreams returns the resolvers names outside the cluster are forwarded to.
func (s *Server) Upstreams() []string { return append([]string(nil), s.upstreams...) }

// Run listens on every Config.Listen address over UDP and TCP, failing fast
// if one cannot be bound, and serves until ctx ends, then returns nil. A
// listener failing while serving is returned as an error. A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	if len(s.listen) == 0 {
		return errors.New("dns: no listen address")
	}
	if s.started.Swap(true) {
		return errors.New("dns: server already run")
	}
	var servers []*dns.Server
	var addrs []string
	closeAll := func() {
		for _, srv := range servers {
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	}
	for _, addr := range s.listen {
		pc, l, err := bind(addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("dns: listen %s: %w", addr, err)
		}
		servers = append(servers,
			&dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.MaxMsgSize},
			&dns.Server{Listener: l, Handler: s, ReadTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }})
		addrs = append(addrs, pc.LocalAddr().String())
	}
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
	close(s.ready)
	s.log.Infof("serving cluster DNS for %s on %s (upstreams %s)", strings.TrimSuffix(s.zone, "."), strings.Join(addrs, ", "), strings.Join(s.upstreams, ", "))

	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns: server stopped: %w", err)
	}
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(stop) // fails only for a server already stopped
	}
	closeAll()
	return err
}

// bind opens the UDP and TCP listeners of addr on one port; with port 0 the
// TCP listener takes the port the kernel chose for UDP.
func bind(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		tcpAddr := addr
		if port == "0" {
			tcpAddr = net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		}
		l, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || attempt >= 10 {
			return nil, nil, err
		}
	}
}
