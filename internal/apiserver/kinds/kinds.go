// Package kinds lists every kind mizzen serves: the one table that adding a
// kind extends.
package kinds

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/strategy"
	"github.com/mizzen-dev/mizzen/internal/apiserver/tables"
)

// Registry returns the registry of all served kinds.
func Registry() *registry.Registry {
	core := func(resource string) schema.GroupVersionResource {
		return corev1.SchemeGroupVersion.WithResource(resource)
	}
	k := func(kind *registry.Kind) *registry.Kind {
		kind.Strategy = strategy.For(kind.GroupResource())
		kind.Table = tables.For(kind.GroupResource())
		return kind
	}
	coreEvents := k(&registry.Kind{GVR: core("events"), Kind: "Event", ListKind: "EventList", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
		New: func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
		Fields: eventFields, TTL: eventTTL})
	return registry.New(
		k(&registry.Kind{GVR: core("namespaces"), Kind: "Namespace", ListKind: "NamespaceList", Singular: "namespace", ShortNames: []string{"ns"},
			New: func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			Status: true, Fields: namespaceFields}),
		k(&registry.Kind{GVR: core("nodes"), Kind: "Node", ListKind: "NodeList", Singular: "node", ShortNames: []string{"no"},
			New: func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
			Status: true, Fields: nodeFields}),
		k(&registry.Kind{GVR: core("pods"), Kind: "Pod", ListKind: "PodList", Singular: "pod", ShortNames: []string{"po"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			Status: true, Subresources: []string{"binding", "log", "exec", "attach"}, Fields: podFields}),
		k(&registry.Kind{GVR: core("services"), Kind: "Service", ListKind: "ServiceList", Singular: "service", ShortNames: []string{"svc"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
			Status: true}),
		k(&registry.Kind{GVR: core("endpoints"), Kind: "Endpoints", ListKind: "EndpointsList", Singular: "endpoints", ShortNames: []string{"ep"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} }}),
		k(&registry.Kind{GVR: core("configmaps"), Kind: "ConfigMap", ListKind: "ConfigMapList", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} }}),
		k(&registry.Kind{GVR: core("secrets"), Kind: "Secret", ListKind: "SecretList", Singular: "secret", Namespaced: true,
			New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
			Fields: secretFields}),
		coreEvents,
		k(&registry.Kind{GVR: core("serviceaccounts"), Kind: "ServiceAccount", ListKind: "ServiceAccountList", Singular: "serviceaccount", ShortNames: []string{"sa"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ServiceAccount{} }, NewList: func() runtime.Object { return &corev1.ServiceAccountList{} }}),
		k(&registry.Kind{GVR: appsv1.SchemeGroupVersion.WithResource("deployments"), Kind: "Deployment", ListKind: "DeploymentList", Singular: "deployment", ShortNames: []string{"deploy"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Status: true, Scale: true}),
		k(&registry.Kind{GVR: appsv1.SchemeGroupVersion.WithResource("replicasets"), Kind: "ReplicaSet", ListKind: "ReplicaSetList", Singular: "replicaset", ShortNames: []string{"rs"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			Status: true, Scale: true}),
		k(&registry.Kind{GVR: appsv1.SchemeGroupVersion.WithResource("daemonsets"), Kind: "DaemonSet", ListKind: "DaemonSetList", Singular: "daemonset", ShortNames: []string{"ds"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} },
			Status: true}),
		k(&registry.Kind{GVR: batchv1.SchemeGroupVersion.WithResource("jobs"), Kind: "Job", ListKind: "JobList", Singular: "job", Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &batchv1.Job{} }, NewList: func() runtime.Object { return &batchv1.JobList{} },
			Status: true}),
		k(&registry.Kind{GVR: coordinationv1.SchemeGroupVersion.WithResource("leases"), Kind: "Lease", ListKind: "LeaseList", Singular: "lease", Namespaced: true,
			New: func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} }}),
		k(&registry.Kind{GVR: discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), Kind: "EndpointSlice", ListKind: "EndpointSliceList", Singular: "endpointslice", Namespaced: true,
			New: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} }}),
		k(&registry.Kind{GVR: eventsv1.SchemeGroupVersion.WithResource("events"), Kind: "Event", ListKind: "EventList", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
			New: func() runtime.Object { return &eventsv1.Event{} }, NewList: func() runtime.Object { return &eventsv1.EventList{} },
			Storage: coreEvents, ToStorage: eventToCore, FromStorage: eventFromCore, TTL: eventTTL,
			Fields: func(obj runtime.Object) fields.Set { return eventFields(eventToCore(obj)) }}),
	)
}

// eventTTL is how long an Event lives after its last update, the default
// of kube-apiserver's --event-ttl.
const eventTTL = time.Hour

// Scheme returns a scheme holding the types of every served group, with
// metav1's types registered for each group version.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		coordinationv1.AddToScheme, discoveryv1.AddToScheme, eventsv1.AddToScheme,
		autoscalingv1.AddToScheme, metav1.AddMetaToScheme,
		func(s *runtime.Scheme) error { metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion); return nil },
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func meta(name, namespace string) fields.Set {
	return fields.Set{"metadata.name": name, "metadata.namespace": namespace}
}

func namespaceFields(obj runtime.Object) fields.Set {
	ns := obj.(*corev1.Namespace)
	f := meta(ns.Name, "")
	f["status.phase"] = string(ns.Status.Phase)
	return f
}

func nodeFields(obj runtime.Object) fields.Set {
	n := obj.(*corev1.Node)
	f := meta(n.Name, "")
	f["spec.unschedulable"] = boolString(n.Spec.Unschedulable)
	return f
}

func podFields(obj runtime.Object) fields.Set {
	p := obj.(*corev1.Pod)
	f := meta(p.Name, p.Namespace)
	f["spec.nodeName"] = p.Spec.NodeName
	f["spec.restartPolicy"] = string(p.Spec.RestartPolicy)
	f["spec.schedulerName"] = p.Spec.SchedulerName
	f["spec.serviceAccountName"] = p.Spec.ServiceAccountName
	f["spec.hostNetwork"] = boolString(p.Spec.HostNetwork)
	f["status.phase"] = string(p.Status.Phase)
	f["status.podIP"] = p.Status.PodIP
	f["status.nominatedNodeName"] = p.Status.NominatedNodeName
	return f
}

func secretFields(obj runtime.Object) fields.Set {
	s := obj.(*corev1.Secret)
	f := meta(s.Name, s.Namespace)
	f["type"] = string(s.Type)
	return f
}

func eventFields(obj runtime.Object) fields.Set {
	e := obj.(*corev1.Event)
	f := meta(e.Name, e.Namespace)
	f["involvedObject.kind"] = e.InvolvedObject.Kind
	f["involvedObject.namespace"] = e.InvolvedObject.Namespace
	f["involvedObject.name"] = e.InvolvedObject.Name
	f["involvedObject.uid"] = string(e.InvolvedObject.UID)
	f["involvedObject.apiVersion"] = e.InvolvedObject.APIVersion
	f["involvedObject.resourceVersion"] = e.InvolvedObject.ResourceVersion
	f["involvedObject.fieldPath"] = e.InvolvedObject.FieldPath
	f["reason"] = e.Reason
	f["reportingComponent"] = e.ReportingController
	f["source"] = e.Source.Component
	f["type"] = e.Type
	return f
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
