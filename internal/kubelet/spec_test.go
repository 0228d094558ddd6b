package kubelet

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

func ptr[T any](v T) *T { return &v }

func TestSecurityMergesPodAndContainer(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(2000)), SupplementalGroups: []int64{5}, FSGroup: ptr(int64(7)),
	}}}
	c := &corev1.Container{SecurityContext: &corev1.SecurityContext{
		RunAsUser: ptr(int64(1)), Privileged: ptr(true), ReadOnlyRootFilesystem: ptr(true),
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
	}}
	got := security(pod, c)
	want := rt.Security{RunAsUser: ptr(int64(1)), RunAsGroup: ptr(int64(2000)), SupplementalGroups: []int64{5, 7},
		Privileged: true, ReadOnlyRootFS: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("security:\n got %+v\nwant %+v", got, want)
	}
	if got := security(&corev1.Pod{}, &corev1.Container{}); !reflect.DeepEqual(got, rt.Security{}) {
		t.Fatalf("no contexts: %+v", got)
	}
}

func TestPullSecretsMatchTheImageRegistry(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := fmt.Sprintf(`{"auths":{"registry.example:5000":{"auth":%q},"https://index.docker.io/v1/":{"username":"bob","password":"pw"}}}`, auth)
	s := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(cfg)}}
	for _, tc := range []struct {
		image, user, pass string
	}{
		{"registry.example:5000/team/app:1", "alice", "s3cret"},
		{"nginx:1.27", "bob", "pw"},
		{"library/nginx", "bob", "pw"},
		{"other.example/app", "", ""},
	} {
		a := authFromSecret(s, registryOf(tc.image))
		switch {
		case tc.user == "" && a != nil:
			t.Errorf("%s: unexpected credentials %+v", tc.image, a)
		case tc.user != "" && (a == nil || a.Username != tc.user || a.Password != tc.pass):
			t.Errorf("%s: credentials %+v, want %s", tc.image, a, tc.user)
		}
	}
	for ref, tag := range map[string]string{"busybox": "latest", "a/b:1": "1", "host:5000/a": "latest", "a@sha256:00": ""} {
		if got := tagOf(ref); got != tag {
			t.Errorf("tagOf(%q) = %q, want %q", ref, got, tag)
		}
	}
}

func TestPreStopHookRunsOnDeletion(t *testing.T) {
	h := newHarness(t, nil)
	var mu sync.Mutex
	var order []string
	h.rt.ExecHook = func(id string, opts rt.ExecOptions) (int, bool) {
		if len(opts.Cmd) > 0 && opts.Cmd[0] == "drain" {
			mu.Lock()
			order = append(order, "preStop")
			mu.Unlock()
			return 0, true
		}
		return 0, false
	}
	h.run()
	pod := testPod("hooked", corev1.Container{Name: "app", Command: []string{"sleep", "inf"},
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	del := h.client.pod(pod.UID).DeepCopy()
	now := metav1.NewTime(h.clock.Now())
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, ptr(int64(5))
	h.client.add(del)
	h.until(100*time.Millisecond, "stopped", func() error {
		for _, c := range h.containers(pod.UID) {
			if c.State == rt.StateRunning {
				return fmt.Errorf("%s runs", c.Meta.Kind)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "preStop" {
		t.Fatalf("hooks run: %v", order)
	}
}

func TestDNSConfigFollowsThePodsPolicy(t *testing.T) {
	k := &Kubelet{cfg: Config{ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local"}}
	cluster := rt.DNSConfig{Servers: []string{"10.43.0.10"},
		Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}
	for _, tc := range []struct {
		name   string
		policy corev1.DNSPolicy
		host   bool
		config *corev1.PodDNSConfig
		want   rt.DNSConfig
	}{
		{name: "default is ClusterFirst", want: cluster},
		{name: "ClusterFirst", policy: corev1.DNSClusterFirst, want: cluster},
		{name: "ClusterFirst on the host network is Default", policy: corev1.DNSClusterFirst, host: true},
		{name: "ClusterFirstWithHostNet", policy: corev1.DNSClusterFirstWithHostNet, host: true, want: cluster},
		{name: "Default: the host's resolvers", policy: corev1.DNSDefault},
		{name: "None with dnsConfig", policy: corev1.DNSNone,
			config: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"example.test"},
				Options: []corev1.PodDNSConfigOption{{Name: "edns0"}, {Name: "attempts", Value: ptr("2")}}},
			want: rt.DNSConfig{Servers: []string{"192.0.2.53"}, Searches: []string{"example.test"}, Options: []string{"edns0", "attempts:2"}}},
		{name: "ClusterFirst with dnsConfig: added, ndots replaced", policy: corev1.DNSClusterFirst,
			config: &corev1.PodDNSConfig{Searches: []string{"example.test"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("2")}}},
			want:   rt.DNSConfig{Servers: cluster.Servers, Searches: append(append([]string{}, cluster.Searches...), "example.test"), Options: []string{"ndots:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("p", corev1.Container{Name: "c"})
			pod.Namespace = "web"
			pod.Spec.DNSPolicy, pod.Spec.HostNetwork, pod.Spec.DNSConfig = tc.policy, tc.host, tc.config
			if got := k.dnsConfig(pod); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dnsConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDNSConfigStartsFromTheHost(t *testing.T) {
	host := rt.DNSConfig{Servers: []string{"192.0.2.53", "192.0.2.54"}, Searches: []string{"lan.example"}, Options: []string{"edns0"}}
	k := &Kubelet{cfg: Config{ClusterDNS: []string{"10.43.0.10"}, ClusterDomain: "cluster.local", HostDNS: host}}
	for _, tc := range []struct {
		name   string
		policy corev1.DNSPolicy
		config *corev1.PodDNSConfig
		want   rt.DNSConfig
	}{
		{name: "ClusterFirst adds the host's search domains", policy: corev1.DNSClusterFirst,
			want: rt.DNSConfig{Servers: []string{"10.43.0.10"},
				Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan.example"}, Options: []string{"ndots:5"}}},
		{name: "Default without dnsConfig is left to the runtime (the host's file)", policy: corev1.DNSDefault},
		{name: "Default with dnsConfig starts from the host's, without duplicates", policy: corev1.DNSDefault,
			config: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.54", "192.0.2.99"}, Searches: []string{"lan.example", "extra.example"}},
			want: rt.DNSConfig{Servers: []string{"192.0.2.53", "192.0.2.54", "192.0.2.99"},
				Searches: []string{"lan.example", "extra.example"}, Options: []string{"edns0"}}},
		{name: "more than 3 nameservers are cut", policy: corev1.DNSClusterFirst,
			config: &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
			want: rt.DNSConfig{Servers: []string{"10.43.0.10", "192.0.2.1", "192.0.2.2"},
				Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local", "lan.example"}, Options: []string{"ndots:5"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("p", corev1.Container{Name: "c"})
			pod.Namespace = "web"
			pod.Spec.DNSPolicy, pod.Spec.DNSConfig = tc.policy, tc.config
			if got := k.dnsConfig(pod); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dnsConfig = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOnlyLoopback(t *testing.T) {
	if !onlyLoopback([]string{"127.0.0.53"}) || onlyLoopback([]string{"127.0.0.53", "192.0.2.1"}) || onlyLoopback(nil) {
		t.Fatal("onlyLoopback")
	}
}
