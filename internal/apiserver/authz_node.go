package apiserver

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
)

// nodeLeaseNamespace holds the nodes' heartbeat leases.
const nodeLeaseNamespace = corev1.NamespaceNodeLease

// noRule is authorizeNode's reason for a request no node rule covers: the
// refusal then reads like any other user's.
const noRule = "no rule"

// nodeGraph answers which pods are bound to a node, from the cache. Like
// Kubernetes' Node authorizer it trusts the cache, which may lag a write
// by moments: a kubelet retries.
type nodeGraph struct {
	pods *cache.Resource
}

func (g *nodeGraph) pod(namespace, name string) (*corev1.Pod, bool) {
	o, ok := g.pods.Get(g.pods.Key(namespace, name))
	if !ok {
		return nil, false
	}
	p, ok := o.(*corev1.Pod)
	return p, ok
}

func (g *nodeGraph) podsOn(node string) []*corev1.Pod {
	objs, _ := g.pods.List(rest.FieldIndex, "spec.nodeName="+node)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}

// authorizeNode returns "" when node may do verb on rq, and otherwise why
// not. The rules are Kubernetes' Node authorizer with the system:node
// role, simplified:
//   - read pods, nodes, services, endpoints, endpointslices, namespaces;
//   - create nodes (NodeRestriction admission checks the name), and
//     update, patch or delete its own Node and read or write its status;
//   - its own Lease in kube-node-lease, and list or watch leases there;
//   - create, update and patch events;
//   - read or write the status of, and delete, pods bound to it;
//   - get the secrets, configmaps, persistentvolumeclaims and
//     serviceaccounts that pods bound to it reference.
//
// The rules that need to know which pods are bound to the node refuse
// without a graph g.
func authorizeNode(node, verb string, rq request, g *nodeGraph) string {
	read := verb == "get" || verb == "list" || verb == "watch"
	group, resource, sub := rq.kind.GVR.Group, rq.kind.GVR.Resource, rq.sub
	switch {
	case group == "" && resource == "nodes":
		switch {
		case sub == "" && read, sub == "" && verb == "create":
			return ""
		case sub == "status" && verb != "get" && verb != "update" && verb != "patch",
			sub == "" && verb != "update" && verb != "patch" && verb != "delete",
			sub != "" && sub != "status":
			return noRule
		case rq.name != node && verb == "get":
			return noRelationship(node)
		case rq.name != node:
			return fmt.Sprintf("node '%s' cannot modify node '%s'", node, rq.name)
		}
		return ""
	case group == "" && resource == "pods":
		switch {
		case sub == "" && read:
			return ""
		case sub == "" && verb == "delete", sub == "status" && (verb == "get" || verb == "update" || verb == "patch"):
			if g == nil {
				return noGraph(node)
			}
			if p, ok := g.pod(rq.namespace, rq.name); ok && p.Spec.NodeName == node {
				return ""
			}
			return noRelationship(node)
		}
		return noRule
	case sub == "" && read && (group == "" && (resource == "services" || resource == "endpoints" || resource == "namespaces") ||
		group == "discovery.k8s.io" && resource == "endpointslices"):
		return ""
	case resource == "events" && (group == "" || group == "events.k8s.io") && sub == "":
		if verb == "create" || verb == "update" || verb == "patch" {
			return ""
		}
		return noRule
	case group == "coordination.k8s.io" && resource == "leases" && sub == "":
		switch {
		case rq.namespace != nodeLeaseNamespace:
			return noRule
		case verb == "list" || verb == "watch" || verb == "create":
			return ""
		case verb != "get" && verb != "update" && verb != "patch" && verb != "delete":
			return noRule
		case rq.name != node:
			return fmt.Sprintf("node '%s' can only access its own lease", node)
		}
		return ""
	case group == "" && sub == "" && verb == "get" &&
		(resource == "secrets" || resource == "configmaps" || resource == "persistentvolumeclaims" || resource == "serviceaccounts"):
		if g == nil {
			return noGraph(node)
		}
		for _, p := range g.podsOn(node) {
			if p.Namespace == rq.namespace && referencedBy(p, resource)[rq.name] {
				return ""
			}
		}
		return noRelationship(node)
	}
	return noRule
}

func noRelationship(node string) string {
	return fmt.Sprintf("no relationship found between node '%s' and this object", node)
}

func noGraph(node string) string {
	return fmt.Sprintf("node '%s': the node authorizer has no pod graph", node)
}

// referencedBy returns the names of the objects of resource (secrets,
// configmaps, persistentvolumeclaims, serviceaccounts) that pod uses.
func referencedBy(pod *corev1.Pod, resource string) map[string]bool {
	refs := map[string]bool{}
	add := func(name string) {
		if name != "" {
			refs[name] = true
		}
	}
	spec := &pod.Spec
	switch resource {
	case "serviceaccounts":
		add(spec.ServiceAccountName)
		return refs
	case "persistentvolumeclaims":
		for _, v := range spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				add(v.PersistentVolumeClaim.ClaimName)
			}
			if v.Ephemeral != nil {
				add(pod.Name + "-" + v.Name)
			}
		}
		return refs
	}
	secrets := resource == "secrets"
	if secrets {
		for _, s := range spec.ImagePullSecrets {
			add(s.Name)
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case secrets && v.Secret != nil:
			add(v.Secret.SecretName)
		case !secrets && v.ConfigMap != nil:
			add(v.ConfigMap.Name)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if secrets && src.Secret != nil {
					add(src.Secret.Name)
				}
				if !secrets && src.ConfigMap != nil {
					add(src.ConfigMap.Name)
				}
			}
		case secrets && v.CSI != nil && v.CSI.NodePublishSecretRef != nil:
			add(v.CSI.NodePublishSecretRef.Name)
		}
	}
	visit := func(envFrom []corev1.EnvFromSource, env []corev1.EnvVar) {
		for _, e := range envFrom {
			if secrets && e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
			if !secrets && e.ConfigMapRef != nil {
				add(e.ConfigMapRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom == nil {
				continue
			}
			if secrets && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
			if !secrets && e.ValueFrom.ConfigMapKeyRef != nil {
				add(e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
	for _, c := range spec.InitContainers {
		visit(c.EnvFrom, c.Env)
	}
	for _, c := range spec.Containers {
		visit(c.EnvFrom, c.Env)
	}
	for _, c := range spec.EphemeralContainers {
		visit(c.EnvFrom, c.Env)
	}
	return refs
}
