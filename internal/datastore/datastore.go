// Package datastore opens the etcd that holds all cluster state: an embedded
// single-member etcd under the data directory, or an external cluster.
package datastore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"github.com/mizzen-dev/mizzen/internal/pki"
)

// Config selects and configures the datastore.
type Config struct {
	// Dir is where the embedded etcd keeps its data (DATA/server/db/etcd).
	Dir string
	// Endpoints, when set, name an external etcd cluster; Dir and the ports
	// are then unused.
	Endpoints []string
	// ClientPort and PeerPort are the embedded etcd's loopback ports. Both
	// take TLS with client certificates only (see TLSDir).
	ClientPort, PeerPort int
	// TLSDir holds the embedded etcd's own CA and certificates, created on
	// first start: server-ca.crt, server.crt/.key (listeners) and
	// client.crt/.key (for tools such as etcd snapshots). Default: Dir's
	// sibling "tls".
	TLSDir string
	// CAFile, CertFile and KeyFile authenticate to external Endpoints.
	CAFile, CertFile, KeyFile string
	// Name is the member name (defaults to MemberName).
	Name string
	// ForceNewCluster starts the embedded etcd as the only member of its
	// cluster, whatever its data says (--cluster-reset).
	ForceNewCluster bool
	Log             *logrus.Entry
}

// MemberName is the embedded etcd's default member name.
const MemberName = "mizzen"

// PeerURL is the embedded etcd's peer URL for port.
func PeerURL(port int) string { return "https://127.0.0.1:" + strconv.Itoa(port) }

// Datastore is an open etcd and a client for it.
type Datastore struct {
	// Client talks to etcd: in-process for the embedded one.
	Client *clientv3.Client
	etcd   *embed.Etcd
	errc   chan error
}

// Open starts the embedded etcd (or connects to the external one) and
// returns once it serves requests.
func Open(ctx context.Context, cfg Config) (*Datastore, error) {
	if len(cfg.Endpoints) > 0 {
		return openExternal(ctx, cfg)
	}
	return openEmbedded(ctx, cfg)
}

func openExternal(ctx context.Context, cfg Config) (*Datastore, error) {
	var tlsConfig *tls.Config
	if cfg.CAFile != "" || cfg.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		var err error
		if tlsConfig, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("datastore TLS: %w", err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		TLS:         tlsConfig,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", cfg.Endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Get(sctx, "/registry/health", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %v not reachable: %w", cfg.Endpoints, err)
	}
	return &Datastore{Client: c, errc: make(chan error)}, nil
}

func openEmbedded(ctx context.Context, cfg Config) (*Datastore, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Dir), 0o700); err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = MemberName
	}
	tlsDir := cfg.TLSDir
	if tlsDir == "" {
		tlsDir = filepath.Join(filepath.Dir(cfg.Dir), "tls")
	}
	tlsInfo, err := ensureTLS(tlsDir)
	if err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = name
	ec.Dir = cfg.Dir
	// Nothing but mizzen (and tools holding the client certificate in the
	// 0700 data directory) may talk to etcd, even from this host.
	ec.ClientTLSInfo, ec.PeerTLSInfo = tlsInfo, tlsInfo
	client := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(cfg.ClientPort)}
	peer := url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(cfg.PeerPort)}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	ec.InitialCluster = name + "=" + peer.String()
	ec.ForceNewCluster = cfg.ForceNewCluster
	ec.ListenMetricsUrls = nil
	ec.EnableGRPCGateway = false
	// A lone member elects itself after 1-10 ticks: short ticks make that
	// ~90 ms instead of ~650 ms. Peers (HA, later) need the defaults.
	ec.TickMs, ec.ElectionMs = 10, 100
	// Compaction is ours (see Compactor), the same for embedded and external.
	ec.AutoCompactionRetention = "0"
	ec.SnapshotCount = 10000
	// etcd logs benign errors at start (storage version detection); its
	// real failures reach us through Err() and request errors.
	ec.LogLevel = "fatal"
	ec.Logger = "zap"
	ec.LogOutputs = []string{"stderr"}
	if cfg.Log != nil {
		// Through our logger: its format and a component field.
		ec.LogLevel = "info"
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapLogger(cfg.Log.WithField("component", "etcd")))
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	d := &Datastore{Client: v3client.New(e.Server), etcd: e, errc: make(chan error, 1)}
	go func() {
		if err, ok := <-e.Err(); ok && err != nil {
			d.errc <- fmt.Errorf("etcd: %w", err)
		}
	}()
	return d, nil
}

// ensureTLS creates (or loads) the embedded etcd's CA and certificates.
func ensureTLS(dir string) (transport.TLSInfo, error) {
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		return transport.TLSInfo{}, fmt.Errorf("etcd CA: %w", err)
	}
	cert, key, err := pki.EnsurePeerCert(dir, ca, "server", "etcd", []string{"127.0.0.1", "localhost", "::1"})
	if err != nil {
		return transport.TLSInfo{}, err
	}
	if _, _, err := pki.EnsureClientCert(dir, ca, "client", "etcd-client", nil); err != nil {
		return transport.TLSInfo{}, err
	}
	return transport.TLSInfo{
		CertFile: cert, KeyFile: key, ClientCertFile: cert, ClientKeyFile: key,
		TrustedCAFile: filepath.Join(dir, pki.CACertFile), ClientCertAuth: true,
	}, nil
}

// Err reports a fatal error of the embedded etcd after start.
func (d *Datastore) Err() <-chan error { return d.errc }

// Close stops the client and the embedded etcd.
func (d *Datastore) Close() error {
	err := d.Client.Close()
	if d.etcd != nil {
		d.etcd.Close()
		<-d.etcd.Server.StopNotify()
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
