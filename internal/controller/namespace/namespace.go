// Package namespace is the namespace controller: it empties a namespace
// being deleted of everything in it, then removes the namespace, as
// kube-controller-manager's namespace controller does.
package namespace

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// recheck is how soon a namespace whose content is still going is looked
// at again, when no deletion event wakes it earlier.
const recheck = 2 * time.Second

// Controller deletes the content of terminating namespaces and then the
// namespaces themselves.
type Controller struct {
	client     controller.Client
	namespaces controller.Lister[*corev1.Namespace]
	content    []resource
	queue      controller.Queue
	log        *logrus.Entry
	now        func() time.Time
}

// resource is one namespaced kind the controller empties.
type resource struct {
	kind *registry.Kind
	res  *cache.Resource
}

// New returns a namespace controller over env.
func New(env controller.Env) *Controller {
	c := &Controller{
		client:     env.Client,
		namespaces: controller.Lister[*corev1.Namespace]{Res: env.Resources.Resource(corev1.Resource("namespaces"))},
		queue:      env.NewQueue("namespace"),
		log:        env.Log.WithField("controller", "namespace"),
		now:        time.Now,
	}
	for _, k := range kinds.Registry().Kinds() {
		if k.Namespaced && k.Storage == nil {
			c.content = append(c.content, resource{kind: k, res: env.Resources.Resource(k.GroupResource())})
		}
	}
	return c
}

// Run deletes namespaces' content until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	go controller.Watch(ctx, c.namespaces.Res, controller.EnqueueHandler(c.queue))
	for _, r := range c.content {
		// The last object going wakes its terminating namespace.
		go controller.Watch(ctx, r.res, controller.Handler{Delete: func(obj runtime.Object) {
			if m, err := meta.Accessor(obj); err == nil {
				c.queue.Add(m.GetNamespace())
			}
		}})
	}
	return controller.Run(ctx, c.queue, 2, c.log, c.sync)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	ns, ok := c.namespaces.Get("", key)
	if !ok || ns.DeletionTimestamp == nil {
		return nil
	}
	if slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		left, err := c.deleteContent(ctx, ns)
		if err != nil {
			return err
		}
		if ns, err = c.updateConditions(ctx, ns, left); err != nil {
			return err
		}
		if left.objects > 0 {
			c.queue.AddAfter(key, recheck)
			return nil
		}
		fin := ns.DeepCopy()
		fin.Spec.Finalizers = slices.DeleteFunc(fin.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
		if ns, err = c.finalize(ctx, fin); err != nil {
			return fmt.Errorf("finalize namespace %s: %w", key, err)
		}
	}
	if len(ns.Spec.Finalizers) > 0 || len(ns.Finalizers) > 0 {
		return nil // others still finalize it
	}
	if err := c.client.Delete(ctx, ns, nil); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", key, err)
	}
	c.log.WithField("namespace", key).Debug("namespace deleted")
	return nil
}

func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	if f, ok := c.client.(controller.NamespaceFinalizer); ok {
		return f.FinalizeNamespace(ctx, ns)
	}
	out, err := c.client.Update(ctx, ns)
	if err != nil {
		return nil, err
	}
	return out.(*corev1.Namespace), nil
}
