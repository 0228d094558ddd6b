// Package nodeipam gives every node a pod range: the next free
// /NodeCIDRMaskSize of the cluster CIDR, in spec.podCIDR and
// spec.podCIDRs, as kube-controller-manager's range allocator does.
package nodeipam

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// workers is how many nodes are given ranges at once.
const workers = 2

// Controller allocates node pod ranges. Which ranges are taken is read
// from the cache's nodes at every sync, so nothing needs rebuilding after
// a restart and a deleted node's range is free as soon as it is gone.
type Controller struct {
	env      controller.Env
	nodes    controller.Lister[*corev1.Node]
	queue    controller.Queue
	recorder *controller.Recorder

	// mu guards assumed: ranges written to nodes (or being written) that
	// the cache may not show yet, by node name, so that two nodes synced
	// in a burst never get the same range.
	mu      sync.Mutex
	assumed map[string]assumption
	// full holds the nodes told CIDRNotAvailable while they wait, so that
	// retries do not repeat the event.
	full map[string]types.UID
}

type assumption struct {
	uid  types.UID
	cidr netip.Prefix
}

// New returns a node IPAM controller over env.
func New(env controller.Env) *Controller {
	rec := env.Recorder("cidrAllocator")
	rec.Kinds = func(runtime.Object) (string, string) { return "v1", "Node" }
	return &Controller{
		env:      env,
		nodes:    controller.Lister[*corev1.Node]{Res: env.Resources.Resource(corev1.Resource("nodes"))},
		queue:    env.NewQueue("nodeipam"),
		recorder: rec,
		assumed:  map[string]assumption{},
		full:     map[string]types.UID{},
	}
}

// Run allocates ranges until ctx is done. Without a usable cluster CIDR
// it only waits.
func (c *Controller) Run(ctx context.Context) error {
	log := c.env.Log.WithField("controller", "nodeipam")
	cluster, size := c.env.Config.ClusterCIDR, c.env.Config.NodeCIDRMaskSize
	if !cluster.IsValid() || size < cluster.Bits() || size > cluster.Addr().BitLen() {
		log.WithField("clusterCIDR", cluster).WithField("maskSize", size).Info("node IPAM disabled: no usable cluster CIDR")
		<-ctx.Done()
		return nil
	}
	h := controller.EnqueueHandler(c.queue)
	h.Delete = func(obj runtime.Object) {
		c.queue.Add(controller.Key(obj))
		// A freed range may be what a node without one waits for.
		for _, n := range c.nodes.List("", nil) {
			if n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) == 0 {
				c.queue.Add(n.Name)
			}
		}
	}
	go controller.Watch(ctx, c.nodes.Res, h)
	return controller.Run(ctx, c.queue, workers, log, c.sync)
}

// sync gives node key a range if it has none.
func (c *Controller) sync(ctx context.Context, key string) error {
	_, name := controller.SplitKey(key)
	node, ok := c.nodes.Get("", name)
	if !ok {
		c.forget(name, "")
		return nil
	}
	if node.Spec.PodCIDR != "" || len(node.Spec.PodCIDRs) > 0 {
		c.forget(name, "")
		return nil
	}
	cidr, pending, ok := c.reserve(node)
	if pending {
		return nil // written already; the cache has not caught up yet
	}
	if !ok {
		if c.firstFull(node) {
			c.recorder.Eventf(ctx, node, corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: %s", node.Name, "CIDRNotAvailable")
		}
		return fmt.Errorf("node %s: no free range left in cluster CIDR %s", name, c.env.Config.ClusterCIDR)
	}
	n := node.DeepCopy()
	n.Spec.PodCIDR = cidr.String()
	n.Spec.PodCIDRs = []string{cidr.String()}
	if _, err := c.env.Client.Update(ctx, n); err != nil {
		c.forget(name, node.UID)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("set podCIDR of node %s: %w", name, err)
	}
	c.env.Log.WithField("node", name).WithField("podCIDR", cidr).Debug("allocated node pod range")
	return nil
}

// reserve picks the lowest free range for node and holds it as assumed.
// pending says a range was already written for this very node.
func (c *Controller) reserve(node *corev1.Node) (cidr netip.Prefix, pending, ok bool) {
	cluster, size := c.env.Config.ClusterCIDR, c.env.Config.NodeCIDRMaskSize
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, found := c.assumed[node.Name]; found {
		if a.uid == node.UID {
			return a.cidr, true, true
		}
		delete(c.assumed, node.Name) // an earlier node of that name
	}
	used := newCIDRSet()
	for _, n := range c.nodes.List("", nil) {
		used.mark(n.Spec.PodCIDR, size)
		for _, s := range n.Spec.PodCIDRs {
			used.mark(s, size)
		}
	}
	for _, a := range c.assumed {
		used.mark(a.cidr.String(), size)
	}
	cidr, ok = used.lowestFree(cluster, size)
	if ok {
		c.assumed[node.Name] = assumption{uid: node.UID, cidr: cidr}
	}
	return cidr, false, ok
}

// firstFull reports whether node is newly out of luck, and remembers it.
func (c *Controller) firstFull(node *corev1.Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if uid, ok := c.full[node.Name]; ok && uid == node.UID {
		return false
	}
	c.full[node.Name] = node.UID
	return true
}

// forget drops the range assumed for node name (only if it was for uid,
// when uid is set).
func (c *Controller) forget(name string, uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.full, name)
	if a, ok := c.assumed[name]; ok && (uid == "" || a.uid == uid) {
		delete(c.assumed, name)
	}
}
