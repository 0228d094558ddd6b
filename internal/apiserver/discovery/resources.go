package discovery

import (
	"crypto/sha256"
	"encoding/base64"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// subresource describes what Kubernetes advertises for a subresource: its
// verbs and the kind it reads and writes. An empty Kind means the parent's
// kind; Group and Version are set only when the kind lives in another group
// version (deployments/scale is autoscaling/v1 Scale).
type subresource struct {
	Verbs                metav1.Verbs
	Group, Version, Kind string
}

// subresources are the subresources mizzen knows how to advertise, with the
// verbs and kinds kube-apiserver lists for them.
var subresources = map[string]subresource{
	"status":              {Verbs: metav1.Verbs{"get", "patch", "update"}},
	"scale":               {Verbs: metav1.Verbs{"get", "patch", "update"}, Group: "autoscaling", Version: "v1", Kind: "Scale"},
	"binding":             {Verbs: metav1.Verbs{"create"}, Kind: "Binding"},
	"log":                 {Verbs: metav1.Verbs{"get"}},
	"eviction":            {Verbs: metav1.Verbs{"create"}, Group: "policy", Version: "v1", Kind: "Eviction"},
	"ephemeralcontainers": {Verbs: metav1.Verbs{"get", "patch", "update"}},
	"resize":              {Verbs: metav1.Verbs{"get", "patch", "update"}},
	"finalize":            {Verbs: metav1.Verbs{"update"}},
	"exec":                {Verbs: metav1.Verbs{"create", "get"}, Kind: "PodExecOptions"},
	"attach":              {Verbs: metav1.Verbs{"create", "get"}, Kind: "PodAttachOptions"},
	"portforward":         {Verbs: metav1.Verbs{"create", "get"}, Kind: "PodPortForwardOptions"},
	"token":               {Verbs: metav1.Verbs{"create"}, Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"},
}

// APIResources returns the discovery entries of kind k: the resource itself
// followed by its subresources ("pods/status", "deployments/scale"), as
// kube-apiserver lists them in an APIResourceList. Subresources mizzen does
// not know how to describe are left out rather than guessed.
func APIResources(k *registry.Kind) []metav1.APIResource {
	gvk := k.GroupVersionKind()
	out := []metav1.APIResource{{
		Name:               k.GVR.Resource,
		SingularName:       k.Singular,
		Namespaced:         k.Namespaced,
		Kind:               k.Kind,
		Verbs:              registry.Verbs,
		ShortNames:         k.ShortNames,
		Categories:         k.Categories,
		StorageVersionHash: storageVersionHash(gvk.Group, gvk.Version, gvk.Kind),
	}}
	var names []string
	if k.Status {
		names = append(names, "status")
	}
	if k.Scale {
		names = append(names, "scale")
	}
	names = append(names, k.Subresources...)
	for _, name := range names {
		sub, ok := subresources[name]
		if !ok {
			continue
		}
		kind := sub.Kind
		if kind == "" {
			kind = k.Kind
		}
		out = append(out, metav1.APIResource{
			Name:       k.GVR.Resource + "/" + name,
			Namespaced: k.Namespaced,
			Group:      sub.Group,
			Version:    sub.Version,
			Kind:       kind,
			Verbs:      sub.Verbs,
		})
	}
	return out
}

// storageVersionHash is kube-apiserver's hash of the kind's storage version:
// the first 8 bytes of the SHA-256 of "group/version/kind", base64 encoded.
func storageVersionHash(group, version, kind string) string {
	sum := sha256.Sum256([]byte(group + "/" + version + "/" + kind))
	return base64.StdEncoding.EncodeToString(sum[:8])
}

// resourceList returns the sorted resources of kinds, as /api/v1 or
// /apis/{group}/{version} lists them.
func resourceList(kinds []*registry.Kind) []metav1.APIResource {
	var out []metav1.APIResource
	for _, k := range kinds {
		out = append(out, APIResources(k)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// aggregatedResources converts an APIResourceList into the resources of an
// aggregated APIVersionDiscovery the way kube-apiserver does: subresources
// are folded into their parent, and responseKind carries the group and
// version only where the legacy entry has them.
func aggregatedResources(list []metav1.APIResource) []apidiscoveryv2.APIResourceDiscovery {
	var out []apidiscoveryv2.APIResourceDiscovery
	parents := map[string]int{}
	scope := func(r metav1.APIResource) apidiscoveryv2.ResourceScope {
		if r.Namespaced {
			return apidiscoveryv2.ScopeNamespace
		}
		return apidiscoveryv2.ScopeCluster
	}
	for _, r := range list {
		if strings.Contains(r.Name, "/") {
			continue
		}
		out = append(out, apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			ResponseKind:     &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
			Scope:            scope(r),
			SingularResource: r.SingularName,
			Verbs:            r.Verbs,
			ShortNames:       r.ShortNames,
			Categories:       r.Categories,
		})
		parents[r.Name] = len(out) - 1
	}
	for _, r := range list {
		parent, name, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue
		}
		i, found := parents[parent]
		if !found {
			continue
		}
		out[i].Subresources = append(out[i].Subresources, apidiscoveryv2.APISubresourceDiscovery{
			Subresource:  name,
			ResponseKind: &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
			Verbs:        r.Verbs,
		})
	}
	return out
}
