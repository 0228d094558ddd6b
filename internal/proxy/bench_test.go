package proxy

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// bigCluster returns n services with m ready endpoints each, on a mix of
// ClusterIP and NodePort services.
func bigCluster(n, m int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var services []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%d", i)
		s := svc("bench", name, fmt.Sprintf("10.43.%d.%d", i/250, i%250+1), 80)
		if i%10 == 0 {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = int32(30000 + i)
		}
		services = append(services, s)
		var eps []ep
		for j := 0; j < m; j++ {
			eps = append(eps, ep{ip: fmt.Sprintf("10.42.%d.%d", (i*m+j)/250, (i*m+j)%250+1)})
		}
		slices = append(slices, slice("bench", name, name+"-1", "", 8080, eps...))
	}
	return services, slices
}

func BenchmarkCompile(b *testing.B) {
	services, slices := bigCluster(1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		Compile(testConfig, services, slices)
	}
}

// BenchmarkApplyFullSync measures a full sync (compile and one atomic
// transaction) of 1,000 services x 10 endpoints into a fresh namespace.
func BenchmarkApplyFullSync(b *testing.B) {
	_, h := testNetns(b)
	services, slices := bigCluster(1000, 10)
	for b.Loop() {
		p := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
		if err := p.Sync(services, slices); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyEndpointChange measures one endpoint change (compile, diff
// and an incremental transaction) on top of 1,000 services x 10 endpoints.
func BenchmarkApplyEndpointChange(b *testing.B) {
	_, h := testNetns(b)
	services, slices := bigCluster(1000, 10)
	p := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	if err := p.Sync(services, slices); err != nil {
		b.Fatal(err)
	}
	full := slices[500]
	fewer := full.DeepCopy()
	fewer.Endpoints = fewer.Endpoints[1:]
	i := 0
	for b.Loop() {
		if i++; i%2 == 1 {
			slices[500] = fewer
		} else {
			slices[500] = full
		}
		if err := p.Sync(services, slices); err != nil {
			b.Fatal(err)
		}
	}
}
