package prober

import (
	"context"
	"io"
	"sync"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Config is what a Manager needs.
type Config struct {
	Runtime runtime.Runtime // for exec probes
	// Changed is called (from any goroutine) whenever a probe result of the
	// pod changes, so its worker re-syncs.
	Changed func(podUID types.UID)
	// Event records an event on the pod (eventType "Warning", reason
	// "Unhealthy", message).
	Event func(pod *corev1.Pod, eventType, reason, message string)
	Clock clock.WithTicker // nil: the real clock
	Log   *logrus.Entry
}

// Manager runs a probe worker per running container instance and kind of
// probe it has, and holds their results. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	ctx    context.Context // cancelled by Stop; parent of every instance's
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per worker goroutine; Stop waits

	mu      sync.Mutex                         // guards pods, stopped and every instance's fields
	pods    map[types.UID]map[string]*instance // by container ID
	stopped bool
}

// instance is the probe state of one running container instance.
type instance struct {
	uid    types.UID
	target Target             // Pod is replaced by Sync
	cancel context.CancelFunc // stops its workers
	gone   bool               // removed: results are no longer recorded

	started, ready, live bool
	startupFailed        bool
	startupMessage       string
	livenessFailed       bool
	livenessMessage      string
	// triggers wake the liveness and readiness workers when the startup
	// probe succeeds (buffered, one slot each).
	triggers []chan struct{}
}

// NewManager returns a Manager with no workers.
func NewManager(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = logrus.NewEntry(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, ctx: ctx, cancel: cancel, pods: map[types.UID]map[string]*instance{}}
}

// Sync declares the running containers of a pod (the full set for that
// pod): it starts workers for new container IDs and stops workers of
// containers no longer listed. A listed container keeps its workers and
// results; its pod object is updated (a deletion stops its liveness and
// startup probes).
func (m *Manager) Sync(podUID types.UID, targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	insts := m.pods[podUID]
	keep := make(map[string]bool, len(targets))
	for _, t := range targets {
		if t.Pod == nil || t.ContainerID == "" {
			continue
		}
		keep[t.ContainerID] = true
		if inst, ok := insts[t.ContainerID]; ok {
			inst.target.Pod = t.Pod
			continue
		}
		if insts == nil {
			insts = map[string]*instance{}
			m.pods[podUID] = insts
		}
		insts[t.ContainerID] = m.start(podUID, t)
	}
	for id, inst := range insts {
		if !keep[id] {
			inst.stop()
			delete(insts, id)
		}
	}
	if len(insts) == 0 {
		delete(m.pods, podUID)
	}
}

// Remove stops all workers of a pod.
func (m *Manager) Remove(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inst := range m.pods[podUID] {
		inst.stop()
	}
	delete(m.pods, podUID)
}

// Stop stops all workers and waits for them to end (agent shutdown).
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	for uid, insts := range m.pods {
		for _, inst := range insts {
			inst.stop()
		}
		delete(m.pods, uid)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// Status returns the current results for a container instance: started
// (true when there is no startup probe or it has succeeded), ready
// (readiness; true when there is no readiness probe and started), live
// (false once liveness has failed failureThreshold times — the kubelet
// then restarts it). An instance Sync has not declared is neither started
// nor ready, but live.
func (m *Manager) Status(podUID types.UID, containerID string) (started, ready, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst := m.pods[podUID][containerID]
	if inst == nil {
		return false, false, true
	}
	return inst.started, inst.started && inst.ready, inst.live
}

// LivenessFailure reports whether the instance failed its liveness probe
// failureThreshold times, with the output of the last failure.
func (m *Manager) LivenessFailure(podUID types.UID, containerID string) (failed bool, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inst := m.pods[podUID][containerID]; inst != nil {
		return inst.livenessFailed, inst.livenessMessage
	}
	return false, ""
}

// StartupFailure reports whether the instance failed its startup probe
// failureThreshold times, with the output of the last failure.
func (m *Manager) StartupFailure(podUID types.UID, containerID string) (failed bool, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inst := m.pods[podUID][containerID]; inst != nil {
		return inst.startupFailed, inst.startupMessage
	}
	return false, ""
}

// start creates the instance of t and starts a worker per probe its
// container has. m.mu must be held.
func (m *Manager) start(podUID types.UID, t Target) *instance {
	c := findContainer(t.Pod, t.Container)
	ctx, cancel := context.WithCancel(m.ctx)
	inst := &instance{
		uid:     podUID,
		target:  t,
		cancel:  cancel,
		started: probeOf(c, Startup) == nil,
		ready:   probeOf(c, Readiness) == nil,
		live:    true,
	}
	log := m.cfg.Log.WithFields(logrus.Fields{
		"pod": t.Pod.Namespace + "/" + t.Pod.Name, "container": t.Container, "containerID": t.ContainerID,
	})
	for _, k := range Kinds {
		p := probeOf(c, k)
		if p == nil {
			continue
		}
		w := newWorker(m, inst, k, p, log.WithField("probe", string(k)))
		if k != Startup {
			inst.triggers = append(inst.triggers, w.trigger)
		}
		m.wg.Add(1)
		go w.run(ctx)
	}
	return inst
}

// stop ends the instance's workers. m.mu must be held.
func (inst *instance) stop() {
	inst.gone = true
	inst.cancel()
}

// snapshot returns what a worker of inst needs to decide on a probe.
func (m *Manager) snapshot(inst *instance) (t Target, started bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return inst.target, inst.started
}

// record stores a result of kind k that crossed its threshold and tells
// the kubelet when it changed what Status reports.
func (m *Manager) record(inst *instance, k Kind, r Result, message string) {
	m.mu.Lock()
	if inst.gone {
		m.mu.Unlock()
		return
	}
	ok := r == Success
	var changed bool
	var wake []chan struct{}
	switch k {
	case Startup:
		changed = inst.started != ok || inst.startupFailed == ok
		inst.started, inst.startupFailed = ok, !ok
		if !ok {
			inst.startupMessage = message
		} else if changed {
			wake = inst.triggers
		}
	case Liveness:
		changed = inst.live != ok
		inst.live, inst.livenessFailed = ok, !ok
		if !ok {
			inst.livenessMessage = message
		}
	case Readiness:
		changed = inst.ready != ok
		inst.ready = ok
	}
	uid := inst.uid
	m.mu.Unlock()
	for _, c := range wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	if changed && m.cfg.Changed != nil {
		m.cfg.Changed(uid)
	}
}

// event records a Warning event on the pod.
func (m *Manager) event(pod *corev1.Pod, reason, message string) {
	if m.cfg.Event != nil {
		m.cfg.Event(pod, corev1.EventTypeWarning, reason, message)
	}
}
