package kubelet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// ensureImage makes c's image present according to its pull policy; when
// it cannot, it records why (ErrImagePull, ImagePullBackOff,
// ErrImageNeverPull) and returns false.
func (k *Kubelet) ensureImage(ctx context.Context, env *startEnv, c *corev1.Container) bool {
	pod, ref := env.pod, c.Image
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if tagOf(ref) == "latest" {
			policy = corev1.PullAlways
		}
	}
	_, err := k.rt.ImageStatus(ctx, ref)
	present := err == nil
	if err != nil && !errors.Is(err, rt.ErrNotFound) {
		env.mem.setWaiting(c.Name, "ImageInspectError", err.Error())
		k.event(pod, corev1.EventTypeWarning, "InspectFailed", fmt.Sprintf("Failed to inspect image %q: %v", ref, err))
		return false
	}
	switch {
	case !present && policy == corev1.PullNever:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", ref)
		env.mem.setWaiting(c.Name, "ErrImageNeverPull", msg)
		k.event(pod, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
		return false
	case present && policy != corev1.PullAlways:
		k.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", ref))
		return true
	}
	key := string(pod.UID) + "/image/" + ref
	if wait := k.pulls.pending(key); wait > 0 {
		msg := fmt.Sprintf("Back-off pulling image %q", ref)
		env.mem.setWaiting(c.Name, "ImagePullBackOff", msg)
		k.event(pod, corev1.EventTypeNormal, "BackOff", msg)
		return false
	}
	k.event(pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", ref))
	start := k.clock.Now()
	lastReport := start
	img, err := k.rt.PullImage(ctx, ref, k.pullAuth(ctx, pod, ref), func(p rt.PullProgress) {
		if now := k.clock.Now(); now.Sub(lastReport) >= 10*time.Second && p.Total > 0 {
			lastReport = now
			k.event(pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q: %s %d of %d bytes", ref, p.Status, p.Current, p.Total))
		}
	})
	if err != nil {
		k.pulls.next(key, k.clock.Now())
		env.mem.setWaiting(c.Name, "ErrImagePull", err.Error())
		k.event(pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", ref, err))
		k.event(pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return false
	}
	took := k.clock.Since(start).Round(time.Millisecond)
	k.event(pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s (%s including waiting). Image size: %d bytes.", ref, took, took, img.Size))
	return true
}

// pending is how long key's back-off still runs after its last failure.
func (b *backoff) pending(key string) time.Duration {
	b.mu.Lock()
	e, ok := b.entries[key]
	b.mu.Unlock()
	if !ok {
		return 0
	}
	return b.waitFor(key, e.lastUpdate)
}

// tagOf returns the tag of an image reference ("latest" when it has
// neither tag nor digest).
func tagOf(ref string) string {
	if strings.Contains(ref, "@") {
		return ""
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return "latest"
}

// registryOf returns the registry host of an image reference.
func registryOf(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// pullAuth finds credentials for ref's registry in the pod's
// imagePullSecrets (.dockerconfigjson or .dockercfg).
func (k *Kubelet) pullAuth(ctx context.Context, pod *corev1.Pod, ref string) *rt.RegistryAuth {
	host := registryOf(ref)
	for _, ps := range pod.Spec.ImagePullSecrets {
		s := &corev1.Secret{}
		if err := k.cfg.Client.Get(ctx, s, pod.Namespace, ps.Name); err != nil {
			k.event(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
				fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", ps.Name))
			continue
		}
		if a := authFromSecret(s, host); a != nil {
			return a
		}
	}
	return nil
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// authFromSecret returns the entry of a docker config secret for host.
func authFromSecret(s *corev1.Secret, host string) *rt.RegistryAuth {
	var auths map[string]dockerAuth
	if b, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if json.Unmarshal(b, &cfg) != nil {
			return nil
		}
		auths = cfg.Auths
	} else if b, ok := s.Data[corev1.DockerConfigKey]; ok {
		if json.Unmarshal(b, &auths) != nil {
			return nil
		}
	}
	for key, a := range auths {
		if !registryMatches(key, host) {
			continue
		}
		if a.Username == "" && a.Auth != "" {
			if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
				a.Username, a.Password, _ = strings.Cut(string(dec), ":")
			}
		}
		return &rt.RegistryAuth{Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: key,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	}
	return nil
}

// registryMatches compares a docker config key (a host, or a URL such as
// https://index.docker.io/v1/) with a registry host.
func registryMatches(key, host string) bool {
	k := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	if host == "docker.io" {
		return k == "docker.io" || k == "index.docker.io" || k == "registry-1.docker.io"
	}
	return k == host
}
