// Package kubelet runs the pods bound to one node as containers of a
// runtime.Runtime: a worker per pod compares what the pod asks for with
// what the runtime runs, acts (sandbox, images, init containers,
// containers, restarts with back-off, probes, termination) and reports the
// pod's status back to the API server.
//
// The kubelet keeps no state that the runtime's container labels and the
// API cannot give back: a restarted kubelet adopts what runs.
package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/mizzen-dev/mizzen/internal/kubelet/prober"
	"github.com/mizzen-dev/mizzen/internal/kubelet/volume"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// Client is what the kubelet needs of the API (internal/apiclient.Client
// in the agent; a fake in unit tests).
type Client interface {
	Get(ctx context.Context, obj runtime.Object, namespace, name string) error
	Patch(ctx context.Context, obj runtime.Object, pt types.PatchType, data []byte, sub string) (runtime.Object, error)
	Delete(ctx context.Context, obj runtime.Object, opts *metav1.DeleteOptions) error
}

// Config is what a Kubelet is built from.
type Config struct {
	NodeName string
	Runtime  rt.Runtime
	Client   Client
	// Pods lists the pods bound to this node (the agent's informer);
	// PodsSynced tells when that list is complete.
	Pods       func() []*corev1.Pod
	PodsSynced func() bool
	// Services lists the cluster's services, for service environment
	// variables (may be nil).
	Services func() []*corev1.Service
	// Allocatable is the node's allocatable resources (may be nil).
	Allocatable func() corev1.ResourceList
	// HostIP is the node's InternalIP.
	HostIP string
	// Volumes lays out pod volumes under DATA/agent/pods.
	Volumes *volume.Manager
	// SandboxImage runs every pod's sandbox container.
	SandboxImage string
	// Network is the runtime network sandboxes join ("" = only loopback);
	// unused with PodNetwork.
	Network string
	// PodNetwork, when set, gives each sandbox (created with only
	// loopback) its interface and pod IP (internal/network in the agent).
	PodNetwork PodNetwork
	// ClusterDNS are the cluster DNS servers for dnsPolicy ClusterFirst;
	// empty falls back to the host's resolvers, as the kubelet does.
	ClusterDNS    []string
	ClusterDomain string
	// HostDNS is the host's resolver configuration (HostResolvConf):
	// ClusterFirst pods get its search domains after the cluster's, and
	// Default pods with a dnsConfig start from it.
	HostDNS rt.DNSConfig
	// Event records an event about obj (may be nil).
	Event func(obj runtime.Object, eventType, reason, message string)
	// PodStarted observes how long a pod took from first being seen to
	// all containers running (may be nil).
	PodStarted func(time.Duration)
	Clock      clock.WithTicker // nil: the real clock
	// RelistPeriod is how often the runtime is listed for changes (1 s);
	// ResyncPeriod how often every pod is synced regardless (10 s).
	RelistPeriod, ResyncPeriod time.Duration
	Log                        *logrus.Entry
}

// PodNetwork wires pod sandboxes into the node's pod network, the seam
// the kubelet calls where Kubernetes' kubelet calls its CNI plugin.
type PodNetwork interface {
	// SetUp gives the sandbox id, whose network namespace is netnsPath,
	// its interface and returns its address; again for the same id it
	// returns the same address.
	SetUp(ctx context.Context, id, netnsPath string) (netip.Addr, error)
	// IP returns the address given to sandbox id (zero if none).
	IP(id string) netip.Addr
	// TearDown releases what SetUp gave sandbox id; it is idempotent.
	TearDown(ctx context.Context, id string) error
	// GC releases what was given before before to sandboxes that live
	// reports gone.
	GC(live func(id string) bool, before time.Time) error
}

// Kubelet runs a node's pods.
type Kubelet struct {
	cfg     Config
	rt      rt.Runtime
	clock   clock.WithTicker
	log     *logrus.Entry
	probes  *prober.Manager
	restart *backoff // container restarts, by uid/name
	pulls   *backoff // image pulls, by uid/image
	inspect *inspectCache

	// mu guards workers and pods; a worker is removed (and its entry
	// deleted) only under mu.
	mu      sync.Mutex
	workers map[types.UID]*worker
	pods    map[types.UID]*corev1.Pod // the newest pod object; nil once deleted

	// stateMu guards state, the kubelet's memory of each pod between
	// syncs (waiting reasons, first seen); all of it can be lost.
	stateMu sync.Mutex
	state   map[types.UID]*podMemory

	ctx    context.Context // set by Run; the workers' context
	events chan event
}

type event struct {
	obj                        runtime.Object
	eventType, reason, message string
}

// New builds a Kubelet.
func New(cfg Config) *Kubelet {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.RelistPeriod == 0 {
		cfg.RelistPeriod = time.Second
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.New())
	}
	k := &Kubelet{
		cfg: cfg, rt: cfg.Runtime, clock: cfg.Clock, log: cfg.Log,
		restart: newBackoff(cfg.Clock, backoffInitial, backoffMax),
		pulls:   newBackoff(cfg.Clock, backoffInitial, backoffMax),
		inspect: newInspectCache(),
		workers: map[types.UID]*worker{},
		pods:    map[types.UID]*corev1.Pod{},
		state:   map[types.UID]*podMemory{},
		events:  make(chan event, 1024),
	}
	k.probes = prober.NewManager(prober.Config{
		Runtime: cfg.Runtime,
		Changed: k.kick,
		Event: func(pod *corev1.Pod, eventType, reason, message string) {
			k.event(pod, eventType, reason, message)
		},
		Clock: cfg.Clock,
		Log:   cfg.Log.WithField("component", "prober"),
	})
	return k
}

// HandlePod is the informer handler of the node's pods: old is nil for an
// add, pod nil for a delete.
func (k *Kubelet) HandlePod(old, pod *corev1.Pod) {
	p := pod
	if p == nil {
		p = old
	}
	if p == nil {
		return
	}
	// A relist reports a pod recreated under the same name (another
	// UID) as an update of the old one: the old pod is gone.
	replaced := old != nil && pod != nil && old.UID != pod.UID
	k.mu.Lock()
	k.pods[p.UID] = pod
	if replaced {
		k.pods[old.UID] = nil
	}
	k.mu.Unlock()
	if replaced {
		k.kick(old.UID)
	}
	k.kick(p.UID)
}

// Run runs the pod workers until ctx is done, then stops them (leaving
// containers running, to be adopted by the next kubelet).
func (k *Kubelet) Run(ctx context.Context) error {
	k.mu.Lock()
	k.ctx = ctx
	var pending []types.UID
	for uid := range k.pods {
		pending = append(pending, uid)
	}
	k.mu.Unlock()
	go k.sendEvents(ctx)
	for _, uid := range pending {
		k.kick(uid)
	}
	defer k.probes.Stop()
	relist := k.clock.NewTicker(k.cfg.RelistPeriod)
	defer relist.Stop()
	seen := map[string]rt.State{}
	cleaned := false
	for {
		if !cleaned && (k.cfg.PodsSynced == nil || k.cfg.PodsSynced()) {
			cleaned = true
			k.cleanupOrphans(ctx)
		}
		seen = k.relist(ctx, seen)
		select {
		case <-ctx.Done():
			k.mu.Lock()
			ws := make([]*worker, 0, len(k.workers))
			for _, w := range k.workers {
				ws = append(ws, w)
			}
			k.mu.Unlock()
			for _, w := range ws {
				<-w.done
			}
			return nil
		case <-relist.C():
		}
	}
}

// relist lists the node's containers and wakes the workers of pods whose
// containers changed state (the kubelet's PLEG); it returns the states.
func (k *Kubelet) relist(ctx context.Context, prev map[string]rt.State) map[string]rt.State {
	listed := time.Now()
	cs, err := k.rt.ListContainers(ctx, rt.ListFilter{Node: k.cfg.NodeName})
	if err != nil {
		if ctx.Err() == nil {
			k.log.WithError(err).Debug("relist containers")
		}
		return prev
	}
	now := make(map[string]rt.State, len(cs))
	changed := map[types.UID]bool{}
	for _, c := range cs {
		now[c.ID] = c.State
		if prev[c.ID] != c.State {
			changed[types.UID(c.Meta.Pod.UID)] = true
		}
	}
	for id := range prev {
		if _, ok := now[id]; !ok {
			k.inspect.forget(id)
		}
	}
	if k.cfg.PodNetwork != nil {
		// Addresses of sandboxes removed behind our back (or while the
		// agent was down) go back to the pool.
		live := func(id string) bool { _, ok := now[id]; return ok }
		if err := k.cfg.PodNetwork.GC(live, listed); err != nil {
			k.log.WithError(err).Warn("release pod addresses")
		}
	}
	for uid := range changed {
		k.mu.Lock()
		_, known := k.pods[uid]
		k.mu.Unlock()
		if known || k.synced() {
			k.kick(uid)
		}
	}
	return now
}

func (k *Kubelet) synced() bool { return k.cfg.PodsSynced == nil || k.cfg.PodsSynced() }

// cleanupOrphans starts workers for pods that have containers or a
// directory but are no longer bound here: they clean up and stop.
func (k *Kubelet) cleanupOrphans(ctx context.Context) {
	uids := map[types.UID]bool{}
	if cs, err := k.rt.ListContainers(ctx, rt.ListFilter{Node: k.cfg.NodeName}); err == nil {
		for _, c := range cs {
			uids[types.UID(c.Meta.Pod.UID)] = true
		}
	}
	if k.cfg.Volumes != nil {
		if dirs, err := k.cfg.Volumes.Orphans(); err == nil {
			for _, uid := range dirs {
				uids[uid] = true
			}
		}
	}
	for uid := range uids {
		k.kick(uid)
	}
}

// Pod returns the newest object of the pod uid, if the kubelet has one.
func (k *Kubelet) Pod(uid types.UID) *corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pods[uid]
}

// event records an event asynchronously: events are best effort and must
// never hold up a pod.
func (k *Kubelet) event(obj runtime.Object, eventType, reason, message string) {
	if k.cfg.Event == nil {
		return
	}
	select {
	case k.events <- event{obj, eventType, reason, message}:
	default:
		k.log.WithField("reason", reason).Debug("event dropped: queue full")
	}
}

func (k *Kubelet) sendEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-k.events:
			k.cfg.Event(e.obj, e.eventType, e.reason, e.message)
		}
	}
}

// SetSandboxImage sets the sandbox image; call it before Run.
func (k *Kubelet) SetSandboxImage(ref string) { k.cfg.SandboxImage = ref }

// ContainerID returns the runtime ID of container name of the pod
// namespace/pod: its running or newest instance, or with previous the one
// before. The error wraps rt.ErrNotFound when there is none.
func (k *Kubelet) ContainerID(namespace, pod, name string, previous bool) (string, error) {
	var uid types.UID
	k.mu.Lock()
	for id, p := range k.pods {
		if p != nil && p.Namespace == namespace && p.Name == pod {
			uid = id
		}
	}
	k.mu.Unlock()
	if uid == "" {
		return "", fmt.Errorf("pod %s/%s: %w", namespace, pod, rt.ErrNotFound)
	}
	pc, err := k.gather(context.Background(), uid)
	if err != nil {
		return "", err
	}
	inst := pc.latest(name)
	if previous {
		inst = pc.previous(name)
	}
	if inst == nil {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return "", fmt.Errorf("%s %q in pod %q: %w", what, name, pod, rt.ErrNotFound)
	}
	return inst.ID, nil
}
