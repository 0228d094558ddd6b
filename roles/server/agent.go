package server

import (
	"context"
	"net"
	"os"

	"github.com/mizzen-dev/mizzen/internal/join"
	"github.com/mizzen-dev/mizzen/internal/pki"
	"github.com/mizzen-dev/mizzen/roles/agent"
)

// runAgent runs the server's own agent: a control-plane node that gets its
// certificates from the CA directly instead of joining with the token.
func runAgent(ctx context.Context, cfg Config, ca *pki.CA, url string) error {
	a := cfg.Agent
	a.Server, a.DataDir, a.ControlPlane = url, cfg.DataDir, true
	c := cluster(cfg)
	a.Cluster = &c
	if len(a.NodeIPs) == 0 {
		a.NodeIPs = append(a.NodeIPs, agent.DefaultAddress())
	}
	if a.Log == nil {
		a.Log = cfg.Log.WithField("component", "agent")
	}
	var ips []net.IP
	for _, ip := range a.NodeIPs {
		ips = append(ips, net.IP(ip.AsSlice()))
	}
	hostname, _ := os.Hostname()
	certs, err := pki.IssueNodeCerts(ca, a.NodeName, ips, []string{a.NodeName, hostname, "localhost"})
	if err != nil {
		return err
	}
	creds, err := join.FromNodeCerts(certs)
	if err != nil {
		return err
	}
	a.Credentials = &agent.Credentials{Client: creds.ClientTLS(), Serving: creds.ServingTLS()}
	return agent.Run(ctx, a)
}
