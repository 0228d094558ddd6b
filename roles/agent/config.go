// Package agent builds and runs the agent role: it joins the cluster,
// registers the node and runs its pods (the kubelet) as Docker
// containers, with the kubelet API and the read-only port.
package agent

import (
	"crypto/tls"
	"net/netip"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/join"
)

// Config is everything the agent role takes from its command line (or,
// for the agent inside a server, from the server).
type Config struct {
	// Server is the API server's URL; Token the join token.
	Server string
	Token  string
	// DataDir is the state directory; the agent keeps DATA/agent.
	DataDir  string
	NodeName string
	// NodeIPs are the node's InternalIPs (empty: the default route's).
	NodeIPs []netip.Addr
	Labels  map[string]string
	Taints  []corev1.Taint
	// ControlPlane marks a server's own node.
	ControlPlane bool
	DockerHost   string
	KubeletPort  int
	// ReadOnlyPort 0 disables the read-only endpoint.
	ReadOnlyPort    int
	ReadOnlyAddress netip.Addr
	// Cluster is the cluster's network configuration; nil: asked of the
	// server (the server's own agent is given it).
	Cluster *join.Cluster
	// Binary is the mizzen executable, imported as the sandbox image.
	Binary string
	// Credentials, when set, are used instead of joining with Token:
	// the server gives its own agent certificates directly.
	Credentials *Credentials
	Log         *logrus.Entry
}

// Credentials are a node's TLS identities: a client certificate for the
// API server (system:node:<name>) and the kubelet's serving certificate.
type Credentials struct {
	Client  *tls.Config
	Serving *tls.Config
}
