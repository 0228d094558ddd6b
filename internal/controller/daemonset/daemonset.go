// Package daemonset is the DaemonSet controller: one pod per eligible node
// (nodeSelector, required node affinity, taints and tolerations), pinned
// to its node by node affinity and placed by the scheduler, replaced by a
// rolling update when the template changes, as Kubernetes does.
package daemonset

import (
	"context"
	"sort"

	"github.com/sirupsen/logrus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Controller is the DaemonSet controller.
type Controller struct {
	client     controller.Client
	recorder   *controller.Recorder
	daemonSets controller.Lister[*appsv1.DaemonSet]
	nodes      controller.Lister[*corev1.Node]
	pods       controller.Lister[*corev1.Pod]
	queue      controller.Queue
	log        *logrus.Entry
}

// New returns the DaemonSet controller.
func New(env controller.Env) *Controller {
	return &Controller{
		client:     env.Client,
		recorder:   env.Recorder("daemonset-controller"),
		daemonSets: controller.Lister[*appsv1.DaemonSet]{Res: env.Resources.Resource(schema.GroupResource{Group: "apps", Resource: "daemonsets"})},
		nodes:      controller.Lister[*corev1.Node]{Res: env.Resources.Resource(schema.GroupResource{Resource: "nodes"})},
		pods:       controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(schema.GroupResource{Resource: "pods"})},
		queue:      env.NewQueue("daemonset"),
		log:        env.Log.WithField("controller", "daemonset"),
	}
}

// Run syncs DaemonSets until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	go controller.Watch(ctx, c.daemonSets.Res, controller.EnqueueHandler(c.queue))
	all := func(runtime.Object) {
		for _, ds := range c.daemonSets.List("", nil) {
			c.queue.Add(controller.Key(ds))
		}
	}
	go controller.Watch(ctx, c.nodes.Res, controller.Handler{Add: all, Update: func(_, o runtime.Object) { all(o) }, Delete: all})
	go controller.Watch(ctx, c.pods.Res, controller.OwnerHandler(c.queue, "DaemonSet"))
	return controller.Run(ctx, c.queue, 2, c.log, c.sync)
}

// hashLabel names a pod's template revision.
const hashLabel = appsv1.DefaultDaemonSetUniqueLabelKey

func templateHash(ds *appsv1.DaemonSet) string { return controller.TemplateHash(ds.Spec.Template, nil) }

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name := controller.SplitKey(key)
	cached, ok := c.daemonSets.Get(ns, name)
	if !ok || cached.DeletionTimestamp != nil {
		return nil
	}
	ds := cached.DeepCopy()
	hash := templateHash(ds)
	byNode := map[string][]*corev1.Pod{}
	for _, p := range c.pods.List(ds.Namespace, nil) {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == ds.UID && p.DeletionTimestamp == nil &&
			p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			node := podNode(p)
			byNode[node] = append(byNode[node], p)
		}
	}
	eligible := map[string]bool{}
	for _, n := range c.nodes.List("", nil) {
		if shouldRun(ds, n) {
			eligible[n.Name] = true
		}
	}
	// Pods where they should not be, and duplicates, go.
	for node, pods := range byNode {
		keep := 0
		if eligible[node] {
			keep = 1
			sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
		}
		for _, p := range pods[keep:] {
			if err := c.deletePod(ctx, ds, p); err != nil {
				return err
			}
		}
		byNode[node] = pods[:keep]
	}
	for node := range eligible {
		if len(byNode[node]) == 0 {
			if err := c.createPod(ctx, ds, node, hash); err != nil {
				return err
			}
		}
	}
	if err := c.rollingUpdate(ctx, ds, byNode, eligible, hash); err != nil {
		return err
	}
	return c.syncStatus(ctx, ds, byNode, eligible, hash)
}

// podNode is the node a daemon pod is for: where it runs, or the node its
// affinity pins it to.
func podNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range t.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// daemonTolerations are the tolerations Kubernetes gives every daemon pod.
var daemonTolerations = []corev1.Toleration{
	{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: "node.kubernetes.io/disk-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/memory-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/pid-pressure", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: "node.kubernetes.io/unschedulable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

func (c *Controller) createPod(ctx context.Context, ds *appsv1.DaemonSet, node, hash string) error {
	yes := true
	t := ds.Spec.Template.DeepCopy()
	lbl := labels.Merge(t.Labels, labels.Set{hashLabel: hash})
	spec := t.Spec
	spec.Tolerations = append(spec.Tolerations, daemonTolerations...)
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	spec.Affinity.NodeAffinity = &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: ds.Name + "-", Namespace: ds.Namespace, Labels: lbl, Annotations: t.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: spec,
	}
	created, err := c.client.Create(ctx, pod)
	if err != nil {
		c.recorder.Eventf(ctx, ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return err
	}
	c.recorder.Eventf(ctx, ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.(*corev1.Pod).Name)
	return nil
}

func (c *Controller) deletePod(ctx context.Context, ds *appsv1.DaemonSet, p *corev1.Pod) error {
	if err := c.client.Delete(ctx, p, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.recorder.Eventf(ctx, ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
	return nil
}

// rollingUpdate replaces pods of an old template, maxUnavailable at a
// time: an old pod goes only while few enough pods are unavailable.
func (c *Controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, byNode map[string][]*corev1.Pod, eligible map[string]bool, hash string) error {
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return nil
	}
	maxUnavail := intstr.FromInt32(1)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		maxUnavail = *ru.MaxUnavailable
	}
	limit, _ := intstr.GetScaledValueFromIntOrPercent(&maxUnavail, len(eligible), true)
	limit = max(limit, 1)
	// Every eligible node without a ready pod is unavailable, including
	// those whose replacement was only just created.
	unavailable := 0
	var old []*corev1.Pod
	for node := range eligible {
		pods := byNode[node]
		if len(pods) == 0 {
			unavailable++
			continue
		}
		p := pods[0]
		if p.Labels[hashLabel] != hash {
			old = append(old, p)
		}
		if !ready(p) {
			unavailable++
		}
	}
	sort.Slice(old, func(i, j int) bool { return !ready(old[i]) && ready(old[j]) })
	for _, p := range old {
		if ready(p) && unavailable >= limit {
			break
		}
		if err := c.deletePod(ctx, ds, p); err != nil {
			return err
		}
		if ready(p) {
			unavailable++
		}
	}
	return nil
}

func ready(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Controller) syncStatus(ctx context.Context, ds *appsv1.DaemonSet, byNode map[string][]*corev1.Pod, eligible map[string]bool, hash string) error {
	st := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: int32(len(eligible)), CollisionCount: ds.Status.CollisionCount}
	for node, pods := range byNode {
		if len(pods) == 0 {
			continue
		}
		p := pods[0]
		if !eligible[node] {
			st.NumberMisscheduled++
			continue
		}
		if p.Spec.NodeName != "" {
			st.CurrentNumberScheduled++
		}
		if ready(p) {
			st.NumberReady++
			st.NumberAvailable++
		}
		if p.Labels[hashLabel] == hash {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = max(st.DesiredNumberScheduled-st.NumberAvailable, 0)
	if equality.Semantic.DeepEqual(st, ds.Status) {
		return nil
	}
	ds.Status = st
	_, err := c.client.UpdateStatus(ctx, ds)
	return err
}
