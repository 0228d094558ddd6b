// Package server builds and runs the server role: embedded etcd, the API
// server and (in later issues) the controllers, scheduler and agent.
package server

import (
	"net/netip"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/roles/agent"
)

// Config is everything the server role takes from its command line.
type Config struct {
	DataDir             string
	BindAddress         netip.Addr
	HTTPSPort           int
	AdvertiseAddress    netip.Addr // zero: the default route's address
	TLSSANs             []string
	WriteKubeconfig     string
	WriteKubeconfigMode os.FileMode
	Token               string
	ClusterCIDR         netip.Prefix
	ServiceCIDR         netip.Prefix
	NodePortMin         int
	NodePortMax         int
	ClusterDNS          netip.Addr
	ClusterDomain       string
	NetworkBackend      string
	DatastoreEndpoints  []string
	DatastoreCAFile     string
	DatastoreCertFile   string
	DatastoreKeyFile    string
	EtcdClientPort      int
	EtcdPeerPort        int
	DisableAgent        bool
	// Agent configures the server's own agent (unless DisableAgent); the
	// server fills in its URL and credentials.
	Agent agent.Config
	// NodeName is this server's node name (--node-name; default hostname).
	NodeName string
	// NodeMonitorGracePeriod is how long a node may go without a heartbeat
	// before the node lifecycle controller marks it NotReady.
	NodeMonitorGracePeriod time.Duration
	// Default*TolerationSeconds are the tolerations of the not-ready and
	// unreachable taints that pod admission adds.
	DefaultNotReadyTolerationSeconds    int64
	DefaultUnreachableTolerationSeconds int64
	// ClusterReset makes the embedded etcd a single-member cluster (from
	// the snapshot ClusterResetRestorePath when set), then Run returns.
	ClusterReset            bool
	ClusterResetRestorePath string
	// EtcdSnapshotScheduleCron (cron, k3s's default "0 */12 * * *") and
	// EtcdSnapshotRetention drive scheduled snapshots of the embedded etcd
	// into EtcdSnapshotDir (default DATA/server/db/snapshots), unless
	// EtcdDisableSnapshots.
	EtcdSnapshotScheduleCron string
	EtcdSnapshotRetention    int
	EtcdSnapshotDir          string
	EtcdDisableSnapshots     bool

	// CompactInterval is how often etcd history is compacted.
	CompactInterval time.Duration
	Log             *logrus.Entry

	// Disable names bundled manifests not to deploy (--disable NAME).
	Disable []string
}
