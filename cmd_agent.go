package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/mizzen-dev/mizzen/internal/apiserver/admission"
	"github.com/mizzen-dev/mizzen/roles/agent"
)

func agentCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, Usage: "API server URL, https://HOST:6443", EnvVars: []string{"MIZZEN_URL"}},
		&cli.StringFlag{Name: "token", Aliases: []string{"t"}, Usage: "join token (the server's DATA/server/token)", EnvVars: env("token")},
		&cli.StringFlag{Name: "token-file", Usage: "file holding the join token", EnvVars: env("token-file")},
		&cli.StringFlag{Name: "data-dir", Value: "/var/lib/mizzen", Usage: "state directory", EnvVars: env("data-dir")},
		&cli.BoolFlag{Name: "cleanup", Usage: "remove the pod network and the Service proxy's rules from this host, then exit", EnvVars: env("cleanup")},
	}
	return &cli.Command{
		Name:   "agent",
		Usage:  "run a node: the kubelet on Docker",
		Flags:  append(append(flags, agentFlags()...), globalFlags()...),
		Action: runAgent,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
}

func runAgent(c *cli.Context) error {
	l, err := logger(c)
	if err != nil {
		return err
	}
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("agent takes no arguments, got %q", c.Args().Slice())}
	}
	if c.Bool("cleanup") {
		return agent.Cleanup(c.String("data-dir"), l.WithField("component", "agent"))
	}
	cfg, err := agentConfig(c)
	if err != nil {
		return err
	}
	cfg.Server, cfg.Token = c.String("server"), c.String("token")
	if f := c.String("token-file"); f != "" && cfg.Token == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return usageError{fmt.Errorf("--token-file: %v", err)}
		}
		cfg.Token = strings.TrimSpace(string(b))
	}
	if cfg.Server == "" {
		return usageError{fmt.Errorf("--server (MIZZEN_URL) is required")}
	}
	if !strings.HasPrefix(cfg.Server, "https://") {
		return usageError{fmt.Errorf("--server: %q is not an https:// URL", cfg.Server)}
	}
	if cfg.Token == "" {
		return usageError{fmt.Errorf("--token (MIZZEN_TOKEN) or --token-file is required")}
	}
	for k := range cfg.Labels {
		// The API server would refuse to register the node (NodeRestriction).
		if admission.ForbiddenNodeLabel(k, false) {
			return usageError{fmt.Errorf("--node-label: a node may not set %q on itself: of the kubernetes.io and k8s.io labels "+
				"only the kubelet's (kubernetes.io/hostname, topology.kubernetes.io/zone and region, node.kubernetes.io/..., "+
				"kubelet.kubernetes.io/...) are allowed; set others with kubectl label", k)}
		}
	}
	cfg.DataDir = c.String("data-dir")
	cfg.Log = l.WithField("component", "agent")
	return agent.Run(c.Context, cfg)
}

// agentConfig parses the agent flags, which the server takes too.
func agentConfig(c *cli.Context) (agent.Config, error) {
	cfg := agent.Config{
		NodeName:    c.String("node-name"),
		DockerHost:  c.String("docker-host"),
		KubeletPort: c.Int("kubelet-port"),
		Labels:      map[string]string{},
	}
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return cfg, fmt.Errorf("node name: %w", err)
		}
		cfg.NodeName = strings.ToLower(h)
	}
	if errs := validation.IsDNS1123Subdomain(cfg.NodeName); len(errs) > 0 {
		return cfg, usageError{fmt.Errorf("--node-name: %q: %s", cfg.NodeName, strings.Join(errs, "; "))}
	}
	if s := c.String("node-ip"); s != "" {
		for _, p := range strings.Split(s, ",") {
			a, err := parseAddr("node-ip", strings.TrimSpace(p))
			if err != nil {
				return cfg, err
			}
			cfg.NodeIPs = append(cfg.NodeIPs, a)
		}
	}
	for _, l := range c.StringSlice("node-label") {
		k, v, ok := strings.Cut(l, "=")
		errs := validation.IsQualifiedName(k)
		if ok {
			errs = append(errs, validation.IsValidLabelValue(v)...)
		}
		if !ok || len(errs) > 0 {
			return cfg, usageError{fmt.Errorf("--node-label: %q is not key=value: %s", l, strings.Join(errs, "; "))}
		}
		cfg.Labels[k] = v
	}
	for _, t := range c.StringSlice("node-taint") {
		taint, err := parseTaint(t)
		if err != nil {
			return cfg, usageError{fmt.Errorf("--node-taint: %v", err)}
		}
		cfg.Taints = append(cfg.Taints, taint)
	}
	for _, p := range []string{"kubelet-port"} {
		if err := parsePort(p, c.Int(p)); err != nil {
			return cfg, err
		}
	}
	cfg.ReadOnlyPort = c.Int("read-only-port")
	if cfg.ReadOnlyPort != 0 {
		if err := parsePort("read-only-port", cfg.ReadOnlyPort); err != nil {
			return cfg, err
		}
	}
	var err error
	if cfg.ReadOnlyAddress, err = parseAddr("read-only-address", c.String("read-only-address")); err != nil {
		return cfg, err
	}
	if !strings.HasPrefix(cfg.DockerHost, "unix://") && !strings.HasPrefix(cfg.DockerHost, "tcp://") {
		return cfg, usageError{fmt.Errorf("--docker-host: %q is not a unix:// or tcp:// address", cfg.DockerHost)}
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return cfg, fmt.Errorf("find the mizzen binary: %w", err)
	}
	return cfg, nil
}

// parseTaint parses key[=value]:Effect.
func parseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, fmt.Errorf("%q is not key[=value]:Effect", s)
	}
	k, v, _ := strings.Cut(kv, "=")
	t := corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return t, fmt.Errorf("%q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, effect)
	}
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return t, fmt.Errorf("%q: key: %s", s, strings.Join(errs, "; "))
	}
	if v != "" {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return t, fmt.Errorf("%q: value: %s", s, strings.Join(errs, "; "))
		}
	}
	return t, nil
}
