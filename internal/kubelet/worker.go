package kubelet

import (
	"context"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// worker syncs one pod at a time: kicks coalesce, so a burst of changes
// costs one sync.
type worker struct {
	uid  types.UID
	kick chan struct{} // capacity 1: a pending request to sync
	done chan struct{} // closed when the worker's goroutine ends
}

// kick asks the pod's worker to sync now, starting one if needed. Before
// Run there is nothing to start: Run kicks every known pod.
func (k *Kubelet) kick(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ctx == nil || k.ctx.Err() != nil {
		return
	}
	w, ok := k.workers[uid]
	if !ok {
		w = &worker{uid: uid, kick: make(chan struct{}, 1), done: make(chan struct{})}
		k.workers[uid] = w
		go k.work(k.ctx, w)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (k *Kubelet) work(ctx context.Context, w *worker) {
	defer close(w.done)
	timer := k.clock.NewTimer(k.cfg.ResyncPeriod)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-timer.C():
		}
		next, finished := k.sync(ctx, w.uid, k.Pod(w.uid))
		if finished {
			k.mu.Lock()
			if k.pods[w.uid] == nil && len(w.kick) == 0 {
				delete(k.workers, w.uid)
				delete(k.pods, w.uid)
				// Forgotten under mu: a worker started for the same
				// UID right after must not lose what it records.
				k.forget(w.uid)
				k.mu.Unlock()
				return
			}
			k.mu.Unlock()
			next = 0
		}
		if next <= 0 || next > k.cfg.ResyncPeriod {
			next = k.cfg.ResyncPeriod
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		timer.Reset(next)
	}
}

// podContainers is what the runtime has of one pod, newest attempt first.
type podContainers struct {
	sandboxes []rt.ContainerStatus
	byName    map[string][]rt.ContainerStatus
	gen       uint64 // the inspect cache's generation before the list
}

// latest is the newest instance of the container name, or nil.
func (p *podContainers) latest(name string) *rt.ContainerStatus {
	if cs := p.byName[name]; len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// previous is the instance before the newest, or nil.
func (p *podContainers) previous(name string) *rt.ContainerStatus {
	if cs := p.byName[name]; len(cs) > 1 {
		return &cs[1]
	}
	return nil
}

func (p *podContainers) sandbox() *rt.ContainerStatus {
	if len(p.sandboxes) > 0 {
		return &p.sandboxes[0]
	}
	return nil
}

// all returns every container of the pod, sandboxes last.
func (p *podContainers) all() []rt.ContainerStatus {
	var out []rt.ContainerStatus
	for _, cs := range p.byName {
		out = append(out, cs...)
	}
	return append(out, p.sandboxes...)
}

// gather lists and inspects the pod's containers.
func (k *Kubelet) gather(ctx context.Context, uid types.UID) (*podContainers, error) {
	gen := k.inspect.generation()
	cs, err := k.rt.ListContainers(ctx, rt.ListFilter{Node: k.cfg.NodeName, PodUID: string(uid)})
	if err != nil {
		return nil, err
	}
	pc := &podContainers{byName: map[string][]rt.ContainerStatus{}, gen: gen}
	for _, c := range cs {
		st, err := k.inspect.get(ctx, k.rt, c)
		if err != nil {
			continue // removed meanwhile
		}
		if st.State == rt.StateCreated && (st.Error != "" || st.ExitCode != 0) {
			// Docker leaves a container whose process could not start
			// "created", with the error: it failed, like one that
			// exited, and restarts only by policy and with back-off.
			st.State = rt.StateExited
			if st.FinishedAt.IsZero() {
				st.FinishedAt = st.Created
			}
		}
		if c.Meta.Kind == rt.KindSandbox {
			pc.sandboxes = append(pc.sandboxes, st)
		} else {
			pc.byName[c.Meta.Name] = append(pc.byName[c.Meta.Name], st)
		}
	}
	newest := func(s []rt.ContainerStatus) {
		sort.Slice(s, func(i, j int) bool {
			if s[i].Meta.Attempt != s[j].Meta.Attempt {
				return s[i].Meta.Attempt > s[j].Meta.Attempt
			}
			return s[i].Created.After(s[j].Created)
		})
	}
	newest(pc.sandboxes)
	for _, s := range pc.byName {
		newest(s)
	}
	return pc, nil
}

// regather returns pc when the kubelet has changed no container since
// pc was listed (every change forgets an inspection), else a new list.
func (k *Kubelet) regather(ctx context.Context, pc *podContainers, uid types.UID) (*podContainers, error) {
	if k.inspect.generation() == pc.gen {
		return pc, nil
	}
	return k.gather(ctx, uid)
}

// inspectCache keeps container inspections while a container's listed
// state stays the same: nothing the kubelet reads changes meanwhile.
type inspectCache struct {
	mu  sync.Mutex // guards m, messages and gen
	m   map[string]rt.ContainerStatus
	gen uint64 // counts forgets: a container was changed or went
	// messages are the termination messages of exited containers, read
	// once: an exited container's message cannot change.
	messages map[string]string
}

func (c *inspectCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func newInspectCache() *inspectCache {
	return &inspectCache{m: map[string]rt.ContainerStatus{}, messages: map[string]string{}}
}

// message returns the termination message of the exited container id,
// computing it with read the first time.
func (c *inspectCache) message(id string, read func() string) string {
	c.mu.Lock()
	msg, ok := c.messages[id]
	c.mu.Unlock()
	if ok {
		return msg
	}
	msg = read()
	c.mu.Lock()
	c.messages[id] = msg
	c.mu.Unlock()
	return msg
}

func (c *inspectCache) get(ctx context.Context, r rt.Runtime, ct rt.Container) (rt.ContainerStatus, error) {
	c.mu.Lock()
	st, ok := c.m[ct.ID]
	c.mu.Unlock()
	if ok && st.State == ct.State && ct.State != rt.StateCreated {
		return st, nil
	}
	st, err := r.InspectContainer(ctx, ct.ID)
	if err != nil {
		return st, err
	}
	c.mu.Lock()
	c.m[ct.ID] = st
	c.mu.Unlock()
	return st, nil
}

func (c *inspectCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	delete(c.messages, id)
	c.gen++
	c.mu.Unlock()
}

// podMemory is what the kubelet remembers of a pod between syncs.
type podMemory struct {
	firstSeen time.Time
	reported  bool                    // PodStarted observed
	waiting   map[string]waitingState // why a container is not running
	// last is the status last written, at the pod's lastRV.
	last   *corev1.PodStatus
	lastRV string
}

type waitingState struct{ reason, message string }

func (k *Kubelet) memory(uid types.UID) *podMemory {
	k.stateMu.Lock()
	defer k.stateMu.Unlock()
	m, ok := k.state[uid]
	if !ok {
		m = &podMemory{firstSeen: k.clock.Now(), waiting: map[string]waitingState{}}
		k.state[uid] = m
	}
	return m
}

func (m *podMemory) setWaiting(name, reason, message string) {
	m.waiting[name] = waitingState{reason, message}
}

// forget drops everything the kubelet remembers of a pod that is gone.
func (k *Kubelet) forget(uid types.UID) {
	k.stateMu.Lock()
	delete(k.state, uid)
	k.stateMu.Unlock()
	k.restart.forget(string(uid) + "/")
	k.pulls.forget(string(uid) + "/")
	k.probes.Remove(uid)
}
