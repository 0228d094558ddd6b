package controller

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/cache"
)

// Resources gives the cache of each resource (*cache.Cache in the server;
// a map of memory resources in unit tests).
type Resources interface {
	Resource(gr schema.GroupResource) *cache.Resource
}

// MemoryResources is Resources made of memory caches, for unit tests; a
// resource asked for the first time is created empty.
type MemoryResources map[schema.GroupResource]*cache.Resource

// Resource implements Resources.
func (m MemoryResources) Resource(gr schema.GroupResource) *cache.Resource {
	if r, ok := m[gr]; ok {
		return r
	}
	r := cache.NewMemory(gr.String(), nil)
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
	Log       *logrus.Entry
}

// Recorder returns an event recorder for a component.
func (e Env) Recorder(component string) *Recorder {
	return &Recorder{Client: e.Client, Component: component, Log: e.Log.WithField("events", component)}
}
