// Package scheduler assigns pending pods to nodes, as kube-scheduler's
// default profile does: a priority queue with back-off, a snapshot of the
// shared cache per cycle (plus the pods it bound that the cache does not
// show bound yet), filters and scores, and a binding through pods/binding.
package scheduler

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Name is the scheduler name pods ask for (spec.schedulerName) and the
// component its events come from.
const Name = corev1.DefaultSchedulerName

// batchSize is how many pods one cycle (one snapshot) schedules at most.
const batchSize = 500

// maxBinds is how many bindings (and failure reports) are written at once.
const maxBinds = 32

// Scheduler assigns pending pods to nodes.
type Scheduler struct {
	client  controller.Client
	pods    *cache.Resource
	nodes   *cache.Resource
	nss     *cache.Resource
	rec     *controller.Recorder
	log     *logrus.Entry
	queue   *schedulingQueue
	assumed *assumedPods
	now     func() time.Time
	metrics *metrics

	// rand breaks ties and nextStart rotates where the search for
	// feasible nodes starts; both only used by the scheduling loop.
	rand      *rand.Rand
	nextStart int
	// usage memoises what each bound pod of the last snapshot takes
	// (cache objects are immutable: a changed pod is a new pointer).
	usage map[*corev1.Pod]podUsage

	writes chan struct{}  // semaphore of maxBinds
	wg     sync.WaitGroup // in-flight writes
}

// New returns a scheduler over env's caches, writing through env.Client.
func New(env controller.Env) *Scheduler {
	rec := env.Recorder(Name)
	rec.Kinds = func(runtime.Object) (string, string) { return "v1", "Pod" }
	now := time.Now
	return &Scheduler{
		client:  env.Client,
		pods:    env.Resources.Resource(schema.GroupResource{Resource: "pods"}),
		nodes:   env.Resources.Resource(schema.GroupResource{Resource: "nodes"}),
		nss:     env.Resources.Resource(schema.GroupResource{Resource: "namespaces"}),
		rec:     rec,
		log:     env.Log.WithField("component", "scheduler"),
		queue:   newSchedulingQueue(now),
		assumed: newAssumedPods(),
		now:     now,
		metrics: newMetrics(env.Metrics),
		rand:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		writes:  make(chan struct{}, maxBinds),
	}
}

// Run schedules pods until ctx is done. It returns nil on a clean stop,
// and may be called again after it returned.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.pods.WaitSynced(ctx); err != nil {
		return nil
	}
	if err := s.nodes.WaitSynced(ctx); err != nil {
		return nil
	}
	// A fresh queue per run: under leader election Run is called again
	// after leadership was lost, and the cache is the only state.
	s.queue = newSchedulingQueue(s.now)
	s.assumed = newAssumedPods()
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); s.queue.run(ctx) }()
	go func() { defer bg.Done(); controller.Watch(ctx, s.nodes, s.nodeHandler()) }()
	go func() { defer bg.Done(); controller.Watch(ctx, s.pods, s.podHandler()) }()
	s.log.Info("scheduler started")
	for {
		keys := s.queue.pop(batchSize)
		if keys == nil {
			break
		}
		s.scheduleBatch(ctx, keys)
	}
	s.wg.Wait()
	bg.Wait()
	return nil
}

// pending says whether this scheduler should place pod (a pod with
// scheduling gates waits until they are removed).
func pending(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil && !terminal(pod) && len(pod.Spec.SchedulingGates) == 0 &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == Name)
}

func (s *Scheduler) podHandler() controller.Handler {
	update := func(old, obj runtime.Object) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		key := controller.Key(pod)
		if pending(pod) {
			if !s.assumed.has(key) {
				s.queue.add(key, pod)
			}
			return
		}
		s.queue.remove(key)
		if pod.Spec.NodeName != "" {
			s.assumed.confirm(key)
		}
		// A pod that finished frees its node's resources.
		if prev, ok := old.(*corev1.Pod); ok && pod.Spec.NodeName != "" && terminal(pod) && !terminal(prev) {
			s.queue.moveAll()
		}
	}
	return controller.Handler{
		Add:    func(obj runtime.Object) { update(nil, obj) },
		Update: update,
		Delete: func(obj runtime.Object) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			key := controller.Key(pod)
			s.queue.remove(key)
			wasAssumed := s.assumed.forget(key)
			if pod.Spec.NodeName != "" || wasAssumed {
				s.queue.moveAll()
			}
		},
	}
}

func (s *Scheduler) nodeHandler() controller.Handler {
	return controller.Handler{
		Add: func(runtime.Object) { s.queue.moveAll() },
		Update: func(old, obj runtime.Object) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := obj.(*corev1.Node)
			if !ok1 || !ok2 || schedulingChanged(o, n) {
				s.queue.moveAll()
			}
		},
	}
}

// schedulingChanged says whether a node update can change where pods fit
// (heartbeats, which change only condition times, cannot).
func schedulingChanged(old, n *corev1.Node) bool {
	return !reflect.DeepEqual(old.Labels, n.Labels) || !reflect.DeepEqual(old.Spec, n.Spec) ||
		!reflect.DeepEqual(old.Status.Allocatable, n.Status.Allocatable) ||
		!reflect.DeepEqual(old.Status.Capacity, n.Status.Capacity) || notReadyTaint(old) != notReadyTaint(n)
}

// snapshot builds the cluster as a cycle sees it: the nodes, the pods
// bound to them, and the pods this scheduler bound that the cache does
// not show bound yet.
func (s *Scheduler) snapshot() *snapshot {
	nodeObjs, _ := s.nodes.List("", "")
	nodes := make([]*corev1.Node, 0, len(nodeObjs))
	for _, o := range nodeObjs {
		if n, ok := o.(*corev1.Node); ok {
			nodes = append(nodes, n)
		}
	}
	snap := newSnapshot(nodes)
	nsObjs, _ := s.nss.List("", "")
	snap.namespaceLabels = make(map[string]map[string]string, len(nsObjs))
	for _, o := range nsObjs {
		if ns, ok := o.(*corev1.Namespace); ok {
			snap.namespaceLabels[ns.Name] = ns.Labels
		}
	}
	podObjs, _ := s.pods.List("", "")
	usage := make(map[*corev1.Pod]podUsage, len(s.usage))
	for _, o := range podObjs {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName != "" && !terminal(p) {
			u, ok := s.usage[p]
			if !ok {
				u = usageOf(p)
			}
			usage[p] = u
			snap.addPodUsage(p, p.Spec.NodeName, u)
		}
	}
	s.usage = usage
	lister := controller.Lister[*corev1.Pod]{Res: s.pods}
	for _, p := range s.assumed.list(s.now()) {
		cur, ok := lister.Get(p.Namespace, p.Name)
		if !ok || cur.UID != p.UID || cur.Spec.NodeName != "" {
			s.assumed.confirm(controller.Key(p))
			continue
		}
		snap.addPod(p, p.Spec.NodeName)
	}
	return snap
}

// scheduleBatch schedules pods in one snapshot.
func (s *Scheduler) scheduleBatch(ctx context.Context, keys []string) {
	snap := s.snapshot()
	lister := controller.Lister[*corev1.Pod]{Res: s.pods}
	for _, key := range keys {
		ns, name := controller.SplitKey(key)
		pod, ok := lister.Get(ns, name)
		if !ok || !pending(pod) {
			s.queue.done(key)
			continue
		}
		start := time.Now()
		node, fitErr := s.schedulePod(snap, pod)
		if fitErr != nil {
			s.metrics.attempt(resultUnschedulable, start)
			s.log.WithField("pod", key).Debug(fitErr.Error())
			s.queue.failed(key, true)
			s.write(ctx, func() { s.reportUnschedulable(ctx, pod, fitErr) })
			continue
		}
		assumed := pod.DeepCopy()
		assumed.Spec.NodeName = node
		s.assumed.add(key, assumed, s.now())
		snap.addPod(assumed, node)
		s.write(ctx, func() { s.bind(ctx, key, pod, node, start) })
	}
}

// write runs f in the background, at most maxBinds at once.
func (s *Scheduler) write(ctx context.Context, f func()) {
	select {
	case s.writes <- struct{}{}:
	case <-ctx.Done():
		return
	}
	s.wg.Add(1)
	go func() {
		defer func() { <-s.writes; s.wg.Done() }()
		f()
	}()
}

func (s *Scheduler) bind(ctx context.Context, key string, pod *corev1.Pod, node string, start time.Time) {
	if err := s.client.Bind(ctx, pod, node); err != nil {
		s.metrics.attempt(resultError, start)
		s.assumed.forget(key)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			s.queue.done(key)
			return
		}
		s.log.WithError(err).WithField("pod", key).Debug("bind failed; retrying")
		s.queue.failed(key, false)
		s.queue.moveAll() // the node it held may fit another pod now
		return
	}
	s.metrics.attempt(resultScheduled, start)
	s.assumed.bound(key, s.now())
	s.queue.done(key)
	s.rec.Eventf(ctx, pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
}

// reportUnschedulable records FailedScheduling and sets PodScheduled
// False (when it changes).
func (s *Scheduler) reportUnschedulable(ctx context.Context, pod *corev1.Pod, fitErr *fitError) {
	msg := fitErr.Error()
	s.rec.Eventf(ctx, pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse &&
			c.Reason == corev1.PodReasonUnschedulable && c.Message == msg {
			return
		}
	}
	up := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metaNow(s.now())}
	replaced := false
	for i, c := range up.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			if c.Status == cond.Status {
				cond.LastTransitionTime = c.LastTransitionTime
			}
			up.Status.Conditions[i] = cond
			replaced = true
		}
	}
	if !replaced {
		up.Status.Conditions = append(up.Status.Conditions, cond)
	}
	if up.Status.Phase == "" {
		up.Status.Phase = corev1.PodPending
	}
	if _, err := s.client.UpdateStatus(ctx, up); err != nil {
		s.log.WithError(err).WithField("pod", controller.Key(pod)).Debug("update PodScheduled condition")
	}
}
