package controller

import (
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
)

// Resources gives the cache of each resource (*cache.Cache in the server;
// a map of memory resources in unit tests).
type Resources interface {
	Resource(gr schema.GroupResource) *cache.Resource
}

// MemoryResources is Resources made of memory caches, for unit tests; a
// resource asked for the first time is created empty, with the indexes
// the server's cache has for it.
type MemoryResources map[schema.GroupResource]*cache.Resource

// memoryMu guards every MemoryResources map: controllers under test ask
// for resources from several goroutines.
var memoryMu sync.Mutex

// Resource implements Resources.
func (m MemoryResources) Resource(gr schema.GroupResource) *cache.Resource {
	memoryMu.Lock()
	defer memoryMu.Unlock()
	if r, ok := m[gr]; ok {
		return r
	}
	var idx map[string]cache.IndexFunc
	for _, k := range kinds.Registry().Kinds() {
		if k.GroupResource() == gr && k.Storage == nil {
			idx = rest.Indexes(k)
		}
	}
	r := cache.NewMemory(gr.String(), idx)
	m[gr] = r
	return r
}

// Config holds the cluster settings controllers need.
type Config struct {
	// ClusterCIDR is the pod network; NodeCIDRMaskSize the prefix length
	// of each node's podCIDR (24).
	ClusterCIDR      netip.Prefix
	NodeCIDRMaskSize int
	// NodeMonitorGracePeriod is how old a node's heartbeat may get before
	// the node is NotReady/Unknown (40 s).
	NodeMonitorGracePeriod time.Duration
	// TerminatedPodGCThreshold is how many terminated pods pod GC keeps.
	TerminatedPodGCThreshold int
}

// Env is what every controller is built from.
type Env struct {
	Resources Resources
	Client    Client
	Config    Config
	// Metrics is where controllers' queues and the scheduler register
	// their metrics (nil: nowhere).
	Metrics prometheus.Registerer
	Log     *logrus.Entry
}

// Recorder returns an event recorder for a component.
func (e Env) Recorder(component string) *Recorder {
	return &Recorder{Client: e.Client, Component: component, Log: e.Log.WithField("events", component)}
}
