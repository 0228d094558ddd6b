package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver"
	"github.com/mizzen-dev/mizzen/internal/apiserver/admission"
	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/bootstrap"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/deploy"
	"github.com/mizzen-dev/mizzen/internal/group"
	"github.com/mizzen-dev/mizzen/internal/join"
	"github.com/mizzen-dev/mizzen/internal/pki"
	"github.com/mizzen-dev/mizzen/internal/storage"
	"github.com/mizzen-dev/mizzen/internal/version"
	"github.com/mizzen-dev/mizzen/manifests"
	"github.com/mizzen-dev/mizzen/roles/agent"
)

// Run runs the server role until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	start := time.Now()
	serverDir := filepath.Join(cfg.DataDir, "server")
	if err := os.MkdirAll(serverDir, 0o700); err != nil {
		return err
	}
	if cfg.ClusterReset {
		return clusterReset(ctx, cfg)
	}
	// Listen first, so a taken port fails before anything starts.
	addr := net.JoinHostPort(cfg.BindAddress.String(), strconv.Itoa(cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer ln.Close()

	ds, err := datastore.Open(ctx, etcdConfig(cfg))
	if err != nil {
		return err
	}
	// The datastore outlives every component that writes to it.
	defer ds.Close()
	snaps, err := snapshotScheduler(cfg, ds)
	if err != nil {
		return err
	}
	log.WithField("elapsed", time.Since(start).Round(time.Millisecond)).Debug("etcd ready")

	advertise := cfg.AdvertiseAddress
	if !advertise.IsValid() {
		advertise = agent.DefaultAddress()
	}
	tlsDir := filepath.Join(serverDir, "tls")
	ca, err := pki.EnsureCA(tlsDir)
	if err != nil {
		return err
	}
	serviceIP := cfg.ServiceCIDR.Masked().Addr().Next()
	cert, err := pki.EnsureServingCert(tlsDir, ca, servingHosts(cfg, advertise, serviceIP))
	if err != nil {
		return err
	}
	token, err := pki.EnsureToken(filepath.Join(serverDir, "token"), cfg.Token, ca.CertPEM)
	if err != nil {
		return err
	}
	adminCert, adminKey, err := pki.EnsureClientCert(tlsDir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		return err
	}
	kubeletCert, kubeletKey, err := pki.EnsureClientCert(tlsDir, ca, pki.KubeletClientCertBase, pki.KubeletClientUser, []string{pki.KubeletClientGroup})
	if err != nil {
		return err
	}
	kubeletPair, err := tls.X509KeyPair(kubeletCert, kubeletKey)
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	kubeconfigHost := "127.0.0.1"
	if !cfg.BindAddress.IsUnspecified() && !cfg.BindAddress.IsLoopback() {
		kubeconfigHost = cfg.BindAddress.String()
	}
	if err := pki.WriteKubeconfig(cfg.WriteKubeconfig, cfg.WriteKubeconfigMode,
		"https://"+net.JoinHostPort(kubeconfigHost, strconv.Itoa(cfg.HTTPSPort)), ca.CertPEM, adminCert, adminKey); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	reg := kinds.Registry()
	scheme, err := kinds.Scheme()
	if err != nil {
		return err
	}
	// One registry for the API server, etcd, controllers and scheduler,
	// served at the API server's /metrics.
	metricsReg := prometheus.NewRegistry()
	metricsReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	apiMetrics, err := apiserver.NewMetrics(metricsReg)
	if err != nil {
		return err
	}
	st := storage.New(ds.Client, storage.WithObserver(apiMetrics.ObserveEtcd))
	c := cache.New(st, rest.CacheSpecs(reg), log.WithField("component", "cache"))
	services := admission.NewServices(cfg.ServiceCIDR, admission.PortRange{Min: cfg.NodePortMin, Max: cfg.NodePortMax})
	services.ReserveFirst()
	store := rest.New(reg, st, c, services, admission.DefaultTolerations{
		NotReadySeconds: cfg.DefaultNotReadyTolerationSeconds, UnreachableSeconds: cfg.DefaultUnreachableTolerationSeconds,
	}, admission.NodeRestriction{})
	boot := bootstrap.New(bootstrap.Config{ServiceIP: serviceIP, AdvertiseIP: advertise, Port: cfg.HTTPSPort, Log: log.WithField("component", "bootstrap")}, store)

	manifestsCtl := deploy.New(deploy.Config{
		Dir: filepath.Join(serverDir, "manifests"), Bundled: manifests.FS(), Disable: cfg.Disable, Identity: identity(cfg),
		Vars: map[string]string{"CLUSTER_DNS": cfg.ClusterDNS.String(), "CLUSTER_DOMAIN": cfg.ClusterDomain},
		Log:  log.WithField("component", "deploy"),
	}, store)

	authenticator := authn.New(ca.Pool(), map[string]authn.User{
		token.Secret: {Name: "node-bootstrap", Groups: []string{join.BootstrapGroup}},
	})
	mounts, err := apiMounts(reg)
	if err != nil {
		return err
	}
	// The join endpoint never signs the server's own names (or its node's).
	reserved := servingHosts(cfg, advertise, serviceIP)
	if !cfg.DisableAgent {
		reserved = append(reserved, cfg.Agent.NodeName)
	}
	mounts = append(mounts, join.NewHandler(ca, log.WithField("component", "join"), reserved...).Mount, join.MountCluster(cluster(cfg)))
	api := apiserver.New(apiserver.Config{
		Store: store, Scheme: scheme,
		Authenticate: authn.Middleware(authenticator, func(p string) bool { return authn.Public(p) || join.Public(p) }),
		Mounts:       mounts,
		Kubelet:      &apiserver.KubeletClient{TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{kubeletPair}}},
		Version:      version.Info(),
		Metrics:      apiMetrics,
		Checks: map[string]func() error{
			"etcd": func() error {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := st.Revision(cctx)
				return err
			},
			"informer-sync": func() error {
				if !c.HasSynced() {
					return errors.New("cache not synced")
				}
				return nil
			},
			"bootstrap-objects": func() error {
				select {
				case <-boot.Ready():
					return nil
				default:
					return errors.New("not yet created")
				}
			},
			"manifests": func() error {
				select {
				case <-manifestsCtl.Ready():
					return nil
				default:
					return errors.New("not yet applied")
				}
			},
		},
		Log: log.WithField("component", "apiserver"),
	})
	srv := &http.Server{
		Handler:           api.Handler(),
		TLSConfig:         pki.ServerTLSConfig(cert, ca),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          nil,
	}
	srv.ErrorLog = newHTTPErrorLog(log.WithField("component", "https"))
	// Many informers share one HTTP/2 connection, each watch a stream.
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 1000}

	g, gctx := group.New(ctx)
	run := g.Go
	run("cache", c.Run)
	run("compactor", (&datastore.Compactor{Client: ds.Client, Interval: cfg.CompactInterval, Log: log.WithField("component", "compactor")}).Run)
	if snaps != nil {
		run("etcd-snapshot", snaps.Run)
	}
	run("etcd", func(ctx context.Context) error {
		select {
		case err := <-ds.Err():
			return err
		case <-ctx.Done():
			return nil
		}
	})
	env := controller.Env{
		Resources: c,
		Client:    controller.NewStoreClient(store),
		Config: controller.Config{
			ClusterCIDR: cfg.ClusterCIDR, NodeCIDRMaskSize: 24,
			NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod, TerminatedPodGCThreshold: 12500,
		},
		Metrics: metricsReg,
		Log:     log.WithField("component", "controller-manager"),
	}
	// Components are built anew each time leadership is won: a controller
	// that ran and stopped (leadership lost) cannot run again.
	pick := func(scheduler bool) func() []component {
		return func() []component {
			var out []component
			for _, comp := range controllers(env) {
				if (comp.name == "scheduler") == scheduler {
					out = append(out, comp)
				}
			}
			return out
		}
	}
	id := identity(cfg)
	elect := func(lease string, build func() []component) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-boot.Ready(): // kube-system exists
			case <-ctx.Done():
				return nil
			}
			e := &controller.Elector{
				Name: lease, Identity: id, Client: env.Client,
				Leases:        controller.Lister[*coordinationv1.Lease]{Res: c.Resource(coordinationv1.Resource("leases"))},
				LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
				Log: log.WithField("component", lease),
			}
			return e.Run(ctx, func(ctx context.Context) error { return runAll(ctx, build()) })
		}
	}
	run("controller-manager", elect("kube-controller-manager", pick(false)))
	run("scheduler", elect("kube-scheduler", pick(true)))
	run("bootstrap", func(ctx context.Context) error {
		if err := c.WaitSynced(ctx); err != nil {
			return nil
		}
		svcs, _ := c.Resource(corev1.Resource("services")).List("", "")
		var list []*corev1.Service
		for _, o := range svcs {
			list = append(list, o.(*corev1.Service))
		}
		services.Load(list)
		return boot.Run(ctx)
	})
	run("deploy", func(ctx context.Context) error {
		select {
		case <-boot.Ready(): // kube-system exists
		case <-ctx.Done():
			return nil
		}
		return manifestsCtl.Run(ctx)
	})
	// Requests (watches above all) end when the server stops.
	run("https", group.Serve(srv, tls.NewListener(ln, srv.TLSConfig)))
	if !cfg.DisableAgent {
		url := "https://" + net.JoinHostPort(kubeconfigHost, strconv.Itoa(cfg.HTTPSPort))
		run("agent", func(ctx context.Context) error {
			select {
			case <-boot.Ready():
			case <-ctx.Done():
				return nil
			}
			return runAgent(ctx, cfg, ca, url)
		})
	}
	go func() {
		select {
		case <-manifestsCtl.Ready(): // after bootstrap's
			log.WithFields(map[string]interface{}{
				"address": addr, "elapsed": time.Since(start).Round(time.Millisecond), "kubeconfig": cfg.WriteKubeconfig,
			}).Info("mizzen server ready")
		case <-gctx.Done():
		}
	}()
	err = g.Wait()
	if err == nil {
		log.Info("mizzen server stopped")
	}
	return err
}

// servingHosts are the serving certificate's SANs.
func servingHosts(cfg Config, advertise, serviceIP netip.Addr) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + cfg.ClusterDomain, serviceIP.String()}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if advertise.IsValid() {
		hosts = append(hosts, advertise.String())
	}
	if cfg.BindAddress.IsValid() && !cfg.BindAddress.IsUnspecified() {
		hosts = append(hosts, cfg.BindAddress.String())
	}
	return append(hosts, cfg.TLSSANs...)
}

// cluster is the network configuration the server gives its agents.
func cluster(cfg Config) join.Cluster {
	return join.Cluster{
		ClusterCIDR: cfg.ClusterCIDR.String(), ServiceCIDR: cfg.ServiceCIDR.String(),
		ClusterDNS: cfg.ClusterDNS.String(), ClusterDomain: cfg.ClusterDomain,
		NetworkBackend: cfg.NetworkBackend,
	}
}
