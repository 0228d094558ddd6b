// Package endpoints is the Endpoints and EndpointSlice controller: for
// each Service with a selector it keeps an Endpoints object of the same
// name and the Service's EndpointSlices in step with the pods the
// selector matches (ready, not-ready and terminating addresses, target
// ports resolved per pod), as kube-controller-manager's endpoints and
// endpointslice controllers do.
package endpoints

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// ControllerName is the managed-by label value of the slices this
// controller owns (Kubernetes' endpointslice controller's name).
const ControllerName = "endpointslice-controller.k8s.io"

// Controller keeps Endpoints and EndpointSlices of selector Services.
type Controller struct {
	client    controller.Client
	log       *logrus.Entry
	queue     controller.Queue
	services  controller.Lister[*corev1.Service]
	pods      controller.Lister[*corev1.Pod]
	endpoints controller.Lister[*corev1.Endpoints]
	slices    controller.Lister[*discoveryv1.EndpointSlice]
	nodes     controller.Lister[*corev1.Node]
	recorder  *controller.Recorder
	// Workers is how many services are synced at once.
	Workers int
}

// New returns the controller, reading services, pods, endpoints and
// endpointslices from env's cache.
func New(env controller.Env) *Controller {
	rec := env.Recorder("endpoint-controller")
	rec.Kinds = func(obj runtime.Object) (string, string) {
		switch obj.(type) {
		case *corev1.Endpoints:
			return "v1", "Endpoints"
		case *discoveryv1.EndpointSlice:
			return "discovery.k8s.io/v1", "EndpointSlice"
		}
		return "v1", "Service"
	}
	return &Controller{
		recorder:  rec,
		client:    env.Client,
		log:       env.Log.WithField("controller", "endpoints"),
		queue:     env.NewQueue("endpoints"),
		services:  controller.Lister[*corev1.Service]{Res: env.Resources.Resource(corev1.Resource("services"))},
		pods:      controller.Lister[*corev1.Pod]{Res: env.Resources.Resource(corev1.Resource("pods"))},
		endpoints: controller.Lister[*corev1.Endpoints]{Res: env.Resources.Resource(corev1.Resource("endpoints"))},
		slices:    controller.Lister[*discoveryv1.EndpointSlice]{Res: env.Resources.Resource(discoveryv1.Resource("endpointslices"))},
		nodes:     controller.Lister[*corev1.Node]{Res: env.Resources.Resource(corev1.Resource("nodes"))},
		Workers:   2,
	}
}

// Run watches services, pods, endpoints and slices and syncs services
// until ctx is done. It returns nil on a clean stop.
func (c *Controller) Run(ctx context.Context) error {
	for _, r := range []*cache.Resource{c.services.Res, c.pods.Res, c.endpoints.Res, c.slices.Res} {
		if err := r.WaitSynced(ctx); err != nil {
			return nil
		}
	}
	go controller.Watch(ctx, c.services.Res, controller.EnqueueHandler(c.queue))
	go controller.Watch(ctx, c.pods.Res, controller.Handler{
		Add:    func(obj runtime.Object) { c.enqueuePod(obj, nil) },
		Update: func(old, obj runtime.Object) { c.enqueuePod(obj, old) },
		Delete: func(obj runtime.Object) { c.enqueuePod(obj, nil) },
	})
	// Endpoints and slices changed or deleted by someone else are put back.
	go controller.Watch(ctx, c.endpoints.Res, controller.Handler{
		Update: func(_, obj runtime.Object) { c.queue.Add(controller.Key(obj)) },
		Delete: func(obj runtime.Object) { c.queue.Add(controller.Key(obj)) },
	})
	sliceKey := func(obj runtime.Object) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels[discoveryv1.LabelServiceName] == "" {
			return
		}
		c.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
	}
	go controller.Watch(ctx, c.slices.Res, controller.Handler{
		Update: func(_, obj runtime.Object) { sliceKey(obj) },
		Delete: sliceKey,
	})
	return controller.Run(ctx, c.queue, c.Workers, c.log, c.sync)
}

// enqueuePod adds the services in the pod's namespace whose selector
// matches the pod (or its previous version).
func (c *Controller) enqueuePod(obj, old runtime.Object) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	var oldLabels labels.Set
	if o, ok := old.(*corev1.Pod); ok {
		oldLabels = o.Labels
	}
	for _, svc := range c.services.List(pod.Namespace, nil) {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if sel.Matches(labels.Set(pod.Labels)) || (oldLabels != nil && sel.Matches(oldLabels)) {
			c.queue.Add(controller.Key(svc))
		}
	}
}

// sync brings the Endpoints and slices of the service at key in step.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name := controller.SplitKey(key)
	if ns == "default" && name == "kubernetes" {
		return nil // the API server keeps its own endpoints
	}
	svc, ok := c.services.Get(ns, name)
	if !ok {
		return c.deleteAll(ctx, ns, name)
	}
	if len(svc.Spec.Selector) == 0 || svc.DeletionTimestamp != nil {
		return nil
	}
	pods := c.pods.List(ns, labels.SelectorFromSet(svc.Spec.Selector))
	if err := c.syncEndpoints(ctx, svc, pods); err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if err := c.syncSlices(ctx, svc, pods); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(ctx, svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
				"Error updating Endpoint Slices for Service %s/%s: %v", svc.Namespace, svc.Name, err)
		}
		return err
	}
	return nil
}

// deleteAll removes the Endpoints and the managed slices of a deleted
// service.
func (c *Controller) deleteAll(ctx context.Context, ns, name string) error {
	if ep, ok := c.endpoints.Get(ns, name); ok {
		if err := c.client.Delete(ctx, ep, nil); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	for _, s := range c.serviceSlices(ns, name) {
		if err := c.client.Delete(ctx, s, nil); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// serviceSlices lists the slices this controller manages for a service.
func (c *Controller) serviceSlices(ns, name string) []*discoveryv1.EndpointSlice {
	return c.slices.List(ns, labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName}))
}

// waitFor waits until res's cache has seen a write that returned obj, so
// that the next sync does not act on a cache older than its own writes.
func waitFor(ctx context.Context, res *cache.Resource, obj runtime.Object) error {
	rv := resourceVersion(obj)
	if rv == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return res.WaitForRevision(ctx, rv)
}
