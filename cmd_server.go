package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mizzen-dev/mizzen/manifests"
	"github.com/mizzen-dev/mizzen/roles/server"
)

func agentFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "node-name", Usage: "node name (default: hostname)", EnvVars: env("node-name")},
		&cli.StringFlag{Name: "node-ip", Usage: "node InternalIP (default: the default route's address)", EnvVars: env("node-ip")},
		&cli.StringSliceFlag{Name: "node-label", Usage: "node label k=v (repeatable)", EnvVars: env("node-label")},
		&cli.StringSliceFlag{Name: "node-taint", Usage: "node taint k=v:Effect (repeatable)", EnvVars: env("node-taint")},
		&cli.StringFlag{Name: "docker-host", Value: "unix:///var/run/docker.sock", Usage: "Docker daemon address", EnvVars: []string{"MIZZEN_DOCKER_HOST", "DOCKER_HOST"}},
		&cli.IntFlag{Name: "kubelet-port", Value: 10250, Usage: "authenticated kubelet API port", EnvVars: env("kubelet-port")},
		&cli.IntFlag{Name: "read-only-port", Value: 10255, Usage: "read-only kubelet port, 0 disables", EnvVars: env("read-only-port")},
		&cli.StringFlag{Name: "read-only-address", Value: "127.0.0.1", Usage: "read-only kubelet address", EnvVars: env("read-only-address")},
	}
}

func serverCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "data-dir", Value: "/var/lib/mizzen", Usage: "state directory", EnvVars: env("data-dir")},
		&cli.StringFlag{Name: "bind-address", Value: "0.0.0.0", Usage: "address the API server listens on", EnvVars: env("bind-address")},
		&cli.IntFlag{Name: "https-listen-port", Value: 6443, Usage: "API server port", EnvVars: env("https-listen-port")},
		&cli.StringFlag{Name: "advertise-address", Usage: "address advertised to the cluster (default: the default route's address)", EnvVars: env("advertise-address")},
		&cli.StringSliceFlag{Name: "tls-san", Usage: "extra name or IP in the serving certificate (repeatable)", EnvVars: env("tls-san")},
		&cli.StringFlag{Name: "write-kubeconfig", Value: "/etc/mizzen/mizzen.yaml", Usage: "where to write the admin kubeconfig", EnvVars: env("write-kubeconfig")},
		&cli.StringFlag{Name: "write-kubeconfig-mode", Value: "0600", Usage: "file mode of the kubeconfig", EnvVars: env("write-kubeconfig-mode")},
		&cli.StringFlag{Name: "token", Usage: "join secret (default: generated into DATA/server/token)", EnvVars: env("token")},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the join secret", EnvVars: env("token-file")},
		&cli.StringFlag{Name: "cluster-cidr", Value: "10.42.0.0/16", Usage: "pod network", EnvVars: env("cluster-cidr")},
		&cli.StringFlag{Name: "service-cidr", Value: "10.43.0.0/16", Usage: "service ClusterIP range", EnvVars: env("service-cidr")},
		&cli.StringFlag{Name: "service-node-port-range", Value: "30000-32767", Usage: "NodePort range", EnvVars: env("service-node-port-range")},
		&cli.StringFlag{Name: "cluster-dns", Value: "10.43.0.10", Usage: "cluster DNS service IP", EnvVars: env("cluster-dns")},
		&cli.StringFlag{Name: "cluster-domain", Value: "cluster.local", Usage: "cluster domain", EnvVars: env("cluster-domain")},
		&cli.StringFlag{Name: "network-backend", Value: "vxlan", Usage: "pod network backend: vxlan or host-gw", EnvVars: env("network-backend")},
		&cli.StringFlag{Name: "datastore-endpoint", Usage: "external etcd endpoints, comma-separated (default: embedded etcd)", EnvVars: env("datastore-endpoint")},
		&cli.StringFlag{Name: "datastore-cafile", Usage: "CA of the external etcd", EnvVars: env("datastore-cafile")},
		&cli.StringFlag{Name: "datastore-certfile", Usage: "client certificate for the external etcd", EnvVars: env("datastore-certfile")},
		&cli.StringFlag{Name: "datastore-keyfile", Usage: "client key for the external etcd", EnvVars: env("datastore-keyfile")},
		&cli.IntFlag{Name: "etcd-client-port", Value: 2379, Usage: "embedded etcd client port (127.0.0.1)", EnvVars: env("etcd-client-port")},
		&cli.IntFlag{Name: "etcd-peer-port", Value: 2380, Usage: "embedded etcd peer port (127.0.0.1)", EnvVars: env("etcd-peer-port")},
		&cli.BoolFlag{Name: "disable-agent", Usage: "run the control plane only", EnvVars: env("disable-agent")},
		&cli.StringSliceFlag{Name: "disable", Usage: "do not deploy a bundled manifest: " + strings.Join(manifests.Names(), ", ") + " (repeatable)", EnvVars: env("disable")},
		&cli.DurationFlag{Name: "node-monitor-grace-period", Value: 40 * time.Second, Usage: "how long a node may go without a heartbeat before it is NotReady", EnvVars: env("node-monitor-grace-period")},
		&cli.Int64Flag{Name: "default-not-ready-toleration-seconds", Value: 300, Usage: "toleration of the not-ready taint added to pods", EnvVars: env("default-not-ready-toleration-seconds")},
		&cli.Int64Flag{Name: "default-unreachable-toleration-seconds", Value: 300, Usage: "toleration of the unreachable taint added to pods", EnvVars: env("default-unreachable-toleration-seconds")},
	}
	return &cli.Command{
		Name:   "server",
		Usage:  "run the control plane (and, unless --disable-agent, a node)",
		Flags:  append(append(append(flags, snapshotServerFlags()...), agentFlags()...), globalFlags()...),
		Action: runServer,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

// k3sComponents are the names k3s's --disable takes for what it bundles.
var k3sComponents = []string{"coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"}

func serverConfig(c *cli.Context) (server.Config, error) {
	cfg := server.Config{
		DataDir:                             c.String("data-dir"),
		HTTPSPort:                           c.Int("https-listen-port"),
		TLSSANs:                             c.StringSlice("tls-san"),
		WriteKubeconfig:                     c.String("write-kubeconfig"),
		Token:                               c.String("token"),
		ClusterDomain:                       c.String("cluster-domain"),
		NetworkBackend:                      c.String("network-backend"),
		EtcdClientPort:                      c.Int("etcd-client-port"),
		EtcdPeerPort:                        c.Int("etcd-peer-port"),
		DisableAgent:                        c.Bool("disable-agent"),
		NodeName:                            c.String("node-name"),
		NodeMonitorGracePeriod:              c.Duration("node-monitor-grace-period"),
		DefaultNotReadyTolerationSeconds:    c.Int64("default-not-ready-toleration-seconds"),
		DefaultUnreachableTolerationSeconds: c.Int64("default-unreachable-toleration-seconds"),
		CompactInterval:                     5 * time.Minute,
	}
	if c.Args().Len() > 0 {
		return cfg, usageError{fmt.Errorf("server takes no arguments, got %q", c.Args().Slice())}
	}
	var err error
	if cfg.BindAddress, err = parseAddr("bind-address", c.String("bind-address")); err != nil {
		return cfg, err
	}
	if a := c.String("advertise-address"); a != "" {
		if cfg.AdvertiseAddress, err = parseAddr("advertise-address", a); err != nil {
			return cfg, err
		}
	}
	for _, p := range []string{"https-listen-port", "etcd-client-port", "etcd-peer-port"} {
		if err := parsePort(p, c.Int(p)); err != nil {
			return cfg, err
		}
	}
	mode, perr := strconv.ParseUint(c.String("write-kubeconfig-mode"), 8, 32)
	if perr != nil || mode > 0o777 {
		return cfg, usageError{fmt.Errorf("--write-kubeconfig-mode: %q is not an octal file mode", c.String("write-kubeconfig-mode"))}
	}
	cfg.WriteKubeconfigMode = os.FileMode(mode)
	if f := c.String("token-file"); f != "" && cfg.Token == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, usageError{fmt.Errorf("--token-file: %v", err)}
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if cfg.ClusterCIDR, err = parsePrefix("cluster-cidr", c.String("cluster-cidr")); err != nil {
		return cfg, err
	}
	if cfg.ServiceCIDR, err = parsePrefix("service-cidr", c.String("service-cidr")); err != nil {
		return cfg, err
	}
	if cfg.NodePortMin, cfg.NodePortMax, err = parsePortRange("service-node-port-range", c.String("service-node-port-range")); err != nil {
		return cfg, err
	}
	if cfg.ClusterDNS, err = parseAddr("cluster-dns", c.String("cluster-dns")); err != nil {
		return cfg, err
	}
	if !cfg.ServiceCIDR.Contains(cfg.ClusterDNS) {
		return cfg, usageError{fmt.Errorf("--cluster-dns: %s is not in --service-cidr %s", cfg.ClusterDNS, cfg.ServiceCIDR)}
	}
	switch cfg.NetworkBackend {
	case "vxlan", "host-gw":
	default:
		return cfg, usageError{fmt.Errorf("--network-backend: %q is not vxlan or host-gw", cfg.NetworkBackend)}
	}
	if e := c.String("datastore-endpoint"); e != "" {
		cfg.DatastoreEndpoints = strings.Split(e, ",")
	}
	cfg.DatastoreCAFile, cfg.DatastoreCertFile, cfg.DatastoreKeyFile = c.String("datastore-cafile"), c.String("datastore-certfile"), c.String("datastore-keyfile")
	if cfg.NodeMonitorGracePeriod <= 0 {
		return cfg, usageError{fmt.Errorf("--node-monitor-grace-period must be positive")}
	}
	if cfg.DefaultNotReadyTolerationSeconds < 0 || cfg.DefaultUnreachableTolerationSeconds < 0 {
		return cfg, usageError{fmt.Errorf("--default-*-toleration-seconds must not be negative")}
	}
	if cfg.DataDir == "" {
		return cfg, usageError{fmt.Errorf("--data-dir must not be empty")}
	}
	for _, name := range c.StringSlice("disable") {
		// k3s's components that mizzen does not bundle are accepted (as
		// k3s does, a manifest of that name is removed), so k3s command
		// lines work; other names are typos.
		if !slices.Contains(manifests.Names(), name) && !slices.Contains(k3sComponents, name) {
			return cfg, usageError{fmt.Errorf("--disable: %q is not a bundled manifest (%s)", name, strings.Join(manifests.Names(), ", "))}
		}
		cfg.Disable = append(cfg.Disable, name)
	}
	if err := snapshotServerConfig(c, &cfg); err != nil {
		return cfg, err
	}
	if !cfg.DisableAgent {
		if cfg.Agent, err = agentConfig(c); err != nil {
			return cfg, err
		}
		cfg.NodeName = cfg.Agent.NodeName
	}
	return cfg, nil
}

func runServer(c *cli.Context) error {
	l, err := logger(c)
	if err != nil {
		return err
	}
	cfg, err := serverConfig(c)
	if err != nil {
		return err
	}
	cfg.Log = l.WithField("component", "server")
	return server.Run(c.Context, cfg)
}
