// Package bootstrap creates the objects every Kubernetes cluster has: the
// system namespaces, the kubernetes Service and its endpoints, and a
// default ServiceAccount in every namespace.
package bootstrap

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
)

// Config says where the API server is reachable.
type Config struct {
	// ServiceIP is the kubernetes Service's ClusterIP.
	ServiceIP netip.Addr
	// AdvertiseIP and Port are the API server's endpoint.
	AdvertiseIP netip.Addr
	Port        int
	Log         *logrus.Entry
}

// Bootstrap keeps the bootstrap objects present.
type Bootstrap struct {
	cfg   Config
	store *rest.Store
	ready chan struct{}
}

// New returns a Bootstrap.
func New(cfg Config, store *rest.Store) *Bootstrap {
	return &Bootstrap{cfg: cfg, store: store, ready: make(chan struct{})}
}

// SystemNamespaces are created at start.
var SystemNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// Ready is closed once the bootstrap objects exist.
func (b *Bootstrap) Ready() <-chan struct{} { return b.ready }

// Run creates the objects, then keeps a default ServiceAccount in every new
// namespace and the kubernetes endpoints current, until ctx is done.
func (b *Bootstrap) Run(ctx context.Context) error {
	for {
		err := b.ensure(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		b.cfg.Log.WithError(err).Warn("bootstrap objects; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	close(b.ready)
	nsKind := b.kind("", "namespaces")
	w, err := b.store.Cache().Resource(nsKind.GroupResource()).Watch(0)
	if err != nil {
		return fmt.Errorf("watch namespaces: %w", err)
	}
	defer func() { w.Stop() }()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := b.ensureEndpoints(ctx); err != nil {
				b.cfg.Log.WithError(err).Warn("kubernetes endpoints")
			}
		case ev, ok := <-w.Events():
			if !ok {
				if w, err = b.store.Cache().Resource(nsKind.GroupResource()).Watch(0); err != nil {
					return fmt.Errorf("watch namespaces: %w", err)
				}
				if err := b.serviceAccounts(ctx); err != nil {
					b.cfg.Log.WithError(err).Warn("default service accounts")
				}
				continue
			}
			if ev.Type == watch.Added {
				ns := ev.Object.(*corev1.Namespace)
				if err := b.serviceAccount(ctx, ns); err != nil {
					b.cfg.Log.WithError(err).WithField("namespace", ns.Name).Warn("default service account")
				}
			}
		}
	}
}

func (b *Bootstrap) kind(group, resource string) *registry.Kind {
	gv := corev1.SchemeGroupVersion
	if group == discoveryv1.GroupName {
		gv = discoveryv1.SchemeGroupVersion
	}
	k, ok := b.store.Registry().Lookup(gv.WithResource(resource))
	if !ok {
		panic("bootstrap: " + resource + " is not registered")
	}
	return k
}

// create creates obj unless it exists.
func (b *Bootstrap) create(ctx context.Context, k *registry.Kind, ns string, obj runtime.Object) error {
	_, err := b.store.Create(ctx, k, ns, obj, rest.CreateOptions{Trusted: b.trusted(k)})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// trusted says whether writes of k skip validation: the endpoints of the
// kubernetes Service may point at a loopback advertise address, which
// users' endpoints may not.
func (b *Bootstrap) trusted(k *registry.Kind) bool {
	return b.cfg.AdvertiseIP.IsLoopback() && (k.GVR.Resource == "endpoints" || k.GVR.Resource == "endpointslices")
}

func (b *Bootstrap) ensure(ctx context.Context) error {
	for _, name := range SystemNamespaces {
		if err := b.create(ctx, b.kind("", "namespaces"), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: b.cfg.ServiceIP.String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(b.cfg.Port))}},
		},
	}
	if err := b.create(ctx, b.kind("", "services"), "default", svc); err != nil {
		return fmt.Errorf("kubernetes service: %w", err)
	}
	if err := b.ensureEndpoints(ctx); err != nil {
		return err
	}
	return b.serviceAccounts(ctx)
}

// ensureEndpoints points the kubernetes Service at this API server.
func (b *Bootstrap) ensureEndpoints(ctx context.Context) error {
	port := int32(b.cfg.Port)
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: b.cfg.AdvertiseIP.String()}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	if err := b.upsert(ctx, b.kind("", "endpoints"), ep, func(cur runtime.Object) {
		cur.(*corev1.Endpoints).Subsets = ep.Subsets
	}); err != nil {
		return fmt.Errorf("kubernetes endpoints: %w", err)
	}
	ready, name, proto := true, "https", corev1.ProtocolTCP
	addrType := discoveryv1.AddressTypeIPv4
	if b.cfg.AdvertiseIP.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "mizzen"}},
		AddressType: addrType,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{b.cfg.AdvertiseIP.String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	if err := b.upsert(ctx, b.kind(discoveryv1.GroupName, "endpointslices"), slice, func(cur runtime.Object) {
		c := cur.(*discoveryv1.EndpointSlice)
		c.AddressType, c.Endpoints, c.Ports = slice.AddressType, slice.Endpoints, slice.Ports
	}); err != nil {
		return fmt.Errorf("kubernetes endpointslice: %w", err)
	}
	return nil
}

// upsert creates obj or sets its content on the existing object (no write
// when nothing changed).
func (b *Bootstrap) upsert(ctx context.Context, k *registry.Kind, obj runtime.Object, set func(cur runtime.Object)) error {
	m := obj.(metav1.Object)
	_, err := b.store.Update(ctx, k, m.GetNamespace(), m.GetName(), func(cur runtime.Object) (runtime.Object, error) {
		set(cur)
		cur.(metav1.Object).SetResourceVersion("")
		return cur, nil
	}, rest.UpdateOptions{Trusted: b.trusted(k)})
	if apierrors.IsNotFound(err) {
		return b.create(ctx, k, m.GetNamespace(), obj)
	}
	return err
}

func (b *Bootstrap) serviceAccounts(ctx context.Context) error {
	nsKind := b.kind("", "namespaces")
	objs, _ := b.store.Cache().Resource(nsKind.GroupResource()).List("", "")
	for _, o := range objs {
		if err := b.serviceAccount(ctx, o.(*corev1.Namespace)); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bootstrap) serviceAccount(ctx context.Context, ns *corev1.Namespace) error {
	if ns.DeletionTimestamp != nil {
		return nil
	}
	saKind := b.kind("", "serviceaccounts")
	res := b.store.Cache().Resource(saKind.GroupResource())
	if _, ok := res.Get(res.Key(ns.Name, "default")); ok {
		return nil
	}
	err := b.create(ctx, saKind, ns.Name, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}})
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return nil // the namespace is going away
	}
	return err
}
