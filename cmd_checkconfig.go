package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mizzen-dev/mizzen/internal/checkconfig"
)

// checkConfigPorts are the ports check-config makes sure are free, by the
// flag that sets each (the server's and agent's flags of the same name).
var checkConfigPorts = []struct {
	flag string
	port int
}{
	{"https-listen-port", 6443}, {"kubelet-port", 10250}, {"read-only-port", 10255},
	{"etcd-client-port", 2379}, {"etcd-peer-port", 2380},
}

// checkConfigCommand checks the host for what mizzen needs, like
// `k3s check-config`: it exits 0 when every required check passes, 1
// otherwise.
func checkConfigCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "docker-host", Value: "unix:///var/run/docker.sock", Usage: "Docker daemon address", EnvVars: []string{"MIZZEN_DOCKER_HOST", "DOCKER_HOST"}},
		&cli.StringFlag{Name: "network-backend", Value: "vxlan", Usage: "pod network backend: vxlan or host-gw", EnvVars: env("network-backend")},
	}
	for _, p := range checkConfigPorts {
		flags = append(flags, &cli.IntFlag{Name: p.flag, Value: p.port, Usage: "port that must be free, 0 skips it", EnvVars: env(p.flag)})
	}
	return &cli.Command{
		Name:  "check-config",
		Usage: "check the kernel and host for what mizzen needs",
		Flags: flags,
		Action: func(c *cli.Context) error {
			cfg := checkconfig.Config{DockerHost: c.String("docker-host"), NetworkBackend: c.String("network-backend")}
			if b := cfg.NetworkBackend; b != "vxlan" && b != "host-gw" {
				return usageError{fmt.Errorf("--network-backend: %q is not vxlan or host-gw", b)}
			}
			// As the agent takes it (cmd_agent.go).
			if h := cfg.DockerHost; !strings.HasPrefix(h, "unix://") && !strings.HasPrefix(h, "tcp://") {
				return usageError{fmt.Errorf("--docker-host: %q is not a unix:// or tcp:// address", h)}
			}
			for _, p := range checkConfigPorts {
				n := c.Int(p.flag)
				if n != 0 {
					if err := parsePort(p.flag, n); err != nil {
						return err
					}
				}
				cfg.Ports = append(cfg.Ports, checkconfig.Port{Flag: p.flag, Port: n})
			}
			results := checkconfig.Run(c.Context, checkconfig.System{}, cfg)
			if failed := checkconfig.Write(os.Stdout, results); failed > 0 {
				return fmt.Errorf("check-config: %d required checks failed", failed)
			}
			return nil
		},
	}
}
