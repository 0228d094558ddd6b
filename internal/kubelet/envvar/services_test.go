package envvar

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: ip, Ports: ports},
	}
}

func TestEnvServiceLinks(t *testing.T) {
	kube := svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	kubeVars := []string{
		"KUBERNETES_SERVICE_HOST=10.43.0.1",
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.43.0.1:443",
		"KUBERNETES_PORT_443_TCP=tcp://10.43.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443",
		"KUBERNETES_PORT_443_TCP_ADDR=10.43.0.1",
	}
	redis := svc("shop", "redis-main", "10.43.0.9",
		corev1.ServicePort{Port: 6379},
		corev1.ServicePort{Name: "metrics-port", Port: 9121, Protocol: corev1.ProtocolUDP})
	redisVars := []string{
		"REDIS_MAIN_SERVICE_HOST=10.43.0.9",
		"REDIS_MAIN_SERVICE_PORT=6379",
		"REDIS_MAIN_SERVICE_PORT_METRICS_PORT=9121",
		"REDIS_MAIN_PORT=tcp://10.43.0.9:6379",
		"REDIS_MAIN_PORT_6379_TCP=tcp://10.43.0.9:6379",
		"REDIS_MAIN_PORT_6379_TCP_PROTO=tcp",
		"REDIS_MAIN_PORT_6379_TCP_PORT=6379",
		"REDIS_MAIN_PORT_6379_TCP_ADDR=10.43.0.9",
		"REDIS_MAIN_PORT_9121_UDP=udp://10.43.0.9:9121",
		"REDIS_MAIN_PORT_9121_UDP_PROTO=udp",
		"REDIS_MAIN_PORT_9121_UDP_PORT=9121",
		"REDIS_MAIN_PORT_9121_UDP_ADDR=10.43.0.9",
	}
	others := []*corev1.Service{
		kube,
		redis,
		svc("shop", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("shop", "external", "", corev1.ServicePort{Port: 80}),
		svc("elsewhere", "db", "10.43.0.7", corev1.ServicePort{Port: 5432}),
	}
	v6 := svc("shop", "v6", "fd00::10", corev1.ServicePort{Port: 80})
	tests := []struct {
		name     string
		links    *bool
		services []*corev1.Service
		env      []corev1.EnvVar
		want     []string
	}{
		{name: "links default on", services: others, want: append(slices.Clone(kubeVars), redisVars...)},
		{name: "links off keeps kubernetes", links: ptr(false), services: others, want: kubeVars},
		{name: "no services", want: []string{}},
		{
			name: "env overrides and expands service vars", services: []*corev1.Service{kube},
			env: []corev1.EnvVar{
				{Name: "API", Value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
				{Name: "KUBERNETES_SERVICE_HOST", Value: "override"},
			},
			want: append(slices.Clone(kubeVars[1:]), "API=https://10.43.0.1:443", "KUBERNETES_SERVICE_HOST=override"),
		},
		{
			name: "ipv6 cluster IP", services: []*corev1.Service{v6},
			want: []string{"V6_SERVICE_HOST=fd00::10", "V6_SERVICE_PORT=80", "V6_PORT=tcp://[fd00::10]:80",
				"V6_PORT_80_TCP=tcp://[fd00::10]:80", "V6_PORT_80_TCP_PROTO=tcp", "V6_PORT_80_TCP_PORT=80", "V6_PORT_80_TCP_ADDR=fd00::10"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(corev1.Container{Name: "app", Env: tt.env})
			pod.Spec.EnableServiceLinks = tt.links
			got, err := Env(context.Background(), testSources(), pod, &pod.Spec.Containers[0], PodInfo{}, tt.services, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("env =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestEnvNamespaceKubernetesServiceReplacesDefault(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Port: 443}),
		svc("shop", "kubernetes", "10.43.0.99", corev1.ServicePort{Port: 443}),
	}
	pod := testPod(corev1.Container{Name: "app"})
	got, err := Env(context.Background(), testSources(), pod, &pod.Spec.Containers[0], PodInfo{}, services, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "KUBERNETES_SERVICE_HOST=10.43.0.99") {
		t.Errorf("env = %q, want the shop namespace's kubernetes service", got)
	}
}
