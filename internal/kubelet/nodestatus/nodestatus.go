// Package nodestatus is the part of the kubelet that keeps the node's
// record in the API server: it registers the Node, reports its status
// (capacity, addresses, nodeInfo, conditions) every StatusInterval when
// something changed and every five minutes otherwise, and renews the
// node's Lease in kube-node-lease every LeaseInterval, as the kubelet does.
package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"

	crt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/version"
)

// Defaults, as the kubelet's.
const (
	// DefaultStatusInterval is nodeStatusUpdateFrequency.
	DefaultStatusInterval = 10 * time.Second
	// DefaultLeaseInterval is the renew interval, a quarter of the lease
	// duration.
	DefaultLeaseInterval = 10 * time.Second
	// ReportInterval is nodeStatusReportFrequency: how often an unchanged
	// status is written anyway.
	ReportInterval = 5 * time.Minute
	// LeaseDurationSeconds is the Lease's spec.leaseDurationSeconds.
	LeaseDurationSeconds = 40
	// DefaultMaxPods is the pods capacity when Config.MaxPods is 0.
	DefaultMaxPods = 110
	// DefaultKubeletPort is the daemon endpoint when Config.KubeletPort is 0.
	DefaultKubeletPort = 10250
	// DefaultDataDir is the directory whose filesystem is reported as
	// ephemeral storage when Config.DataDir is empty.
	DefaultDataDir = "/"
)

// Client is what the package needs from the API client
// (internal/apiclient.Client implements it; tests use a fake). Create,
// Update and Patch take the object naming the target (kind, namespace,
// name) and return the object the server stored.
type Client interface {
	Get(ctx context.Context, obj runtime.Object, namespace, name string) error
	Create(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	Update(ctx context.Context, obj runtime.Object) (runtime.Object, error)
	Patch(ctx context.Context, obj runtime.Object, pt types.PatchType, data []byte, sub string) (runtime.Object, error)
}

// Config configures an Agent.
type Config struct {
	NodeName     string
	NodeIPs      []netip.Addr      // InternalIPs; none = the default route's
	Labels       map[string]string // --node-label
	Taints       []corev1.Taint    // --node-taint, set at registration only
	ControlPlane bool              // adds the control-plane and master role labels
	KubeletPort  int               // 0 = 10250
	MaxPods      int               // 0 = 110
	DataDir      string            // its filesystem is the ephemeral storage; "" = /
	Version      string            // kubeletVersion; "" = version.Kubernetes

	// Runtime reports its version for nodeInfo and the Ready condition.
	Runtime crt.Runtime
	// NetworkReady, when set, says why the pod network is not ready yet
	// (nil once it is); the node is not Ready until then.
	NetworkReady func() error
	Client       Client
	// Event records an event about the node; it may be nil.
	Event func(node *corev1.Node, eventType, reason, message string)
	Host  Host        // nil = this machine
	Clock clock.Clock // nil = the real clock

	StatusInterval time.Duration // 0 = DefaultStatusInterval
	LeaseInterval  time.Duration // 0 = DefaultLeaseInterval
	Log            *logrus.Entry
}

// Agent registers a Node and keeps its status and Lease fresh.
type Agent struct {
	cfg   Config
	host  Host
	clock clock.Clock
	log   *logrus.Entry

	kick       chan struct{} // buffered; Kick sends, the status loop receives
	registered chan struct{} // closed by Run once the Node exists

	mu   sync.Mutex   // guards node
	node *corev1.Node // the last Node read or written; never modified

	// Owned by the status loop (registration runs before it).
	lastReport time.Time

	// Owned by the lease loop.
	lease *coordinationv1.Lease
}

// New checks cfg and returns an Agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("nodestatus: no node name")
	}
	if msgs := validation.IsDNS1123Subdomain(cfg.NodeName); len(msgs) > 0 {
		return nil, fmt.Errorf("nodestatus: node name %q: %s", cfg.NodeName, strings.Join(msgs, "; "))
	}
	if cfg.Client == nil || cfg.Runtime == nil {
		return nil, errors.New("nodestatus: a Client and a Runtime are required")
	}
	if cfg.KubeletPort == 0 {
		cfg.KubeletPort = DefaultKubeletPort
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = DefaultMaxPods
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Version == "" {
		cfg.Version = version.Kubernetes
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.LeaseInterval <= 0 {
		cfg.LeaseInterval = DefaultLeaseInterval
	}
	a := &Agent{
		cfg:        cfg,
		host:       cfg.Host,
		clock:      cfg.Clock,
		log:        cfg.Log,
		kick:       make(chan struct{}, 1),
		registered: make(chan struct{}),
	}
	if a.host == nil {
		a.host = localHost{}
	}
	if a.clock == nil {
		a.clock = clock.RealClock{}
	}
	if a.log == nil {
		a.log = logrus.NewEntry(logrus.StandardLogger()).WithField("component", "nodestatus")
	}
	return a, nil
}

// Run registers the Node (retrying until that works or ctx is done), then
// reports status and renews the Lease until ctx is done. It returns nil
// when ctx is done. Call it once.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(a.registered)
	var wg sync.WaitGroup
	wg.Go(func() { a.runLease(ctx) })
	a.runStatus(ctx)
	wg.Wait()
	return nil
}

// Registered is closed once the Node exists.
func (a *Agent) Registered() <-chan struct{} { return a.registered }

// Node returns the last Node written or read, nil before registration.
// Callers must not modify it.
func (a *Agent) Node() *corev1.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.node
}

// Kick asks for an immediate status recompute (e.g. when Docker comes
// back). It does not block.
func (a *Agent) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) setNode(n *corev1.Node) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.node = n
}

func (a *Agent) event(n *corev1.Node, eventType, reason, message string) {
	if a.cfg.Event != nil {
		a.cfg.Event(n, eventType, reason, message)
	}
}

// wait returns false when ctx is done before d has passed on the clock.
func (a *Agent) wait(ctx context.Context, d time.Duration) bool {
	t := a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}
