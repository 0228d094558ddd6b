package proxy

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

type compileCase struct {
	name     string
	cfg      Config
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

func compileCases() []compileCase {
	nodePort := svc("default", "web", "10.43.0.20", 80)
	nodePort.Spec.Type = corev1.ServiceTypeNodePort
	nodePort.Spec.Ports[0].NodePort = 30080

	affinity := svc("default", "sticky", "10.43.0.21", 80)
	affinity.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	affinity.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}

	etpLocal := nodePort.DeepCopy()
	etpLocal.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	etpLocalNone := etpLocal.DeepCopy()

	itpLocal := svc("default", "web", "10.43.0.20", 80)
	itpLocal.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)

	named := svc("default", "multi", "10.43.0.22", 80, 443)
	named.Spec.Ports[0].Name, named.Spec.Ports[1].Name = "http", "https"
	namedSlice := slice("default", "multi", "multi-abc", "http", 8080, ep{ip: "10.42.1.5"})
	namedSlice.Ports = append(namedSlice.Ports, discoveryv1.EndpointPort{Name: ptr.To("https"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8443)})

	headless := svc("default", "db", "None", 5432)
	external := &corev1.Service{}
	external.Namespace, external.Name = "default", "ext"
	external.Spec.Type, external.Spec.ExternalName = corev1.ServiceTypeExternalName, "example.com"

	dnsCfg := testConfig
	dnsCfg.DNSTarget = netip.MustParseAddrPort("10.42.0.1:53")

	web := slice("default", "web", "web-abc", "", 8080, ep{ip: "10.42.1.5"}, ep{ip: "10.42.0.7", node: "node-a"})
	return []compileCase{
		{"empty", testConfig, nil, nil},
		{"clusterip", testConfig, []*corev1.Service{svc("default", "web", "10.43.0.20", 80)}, []*discoveryv1.EndpointSlice{web}},
		{"no-endpoints", testConfig, []*corev1.Service{nodePort}, nil},
		{"nodeport", testConfig, []*corev1.Service{nodePort}, []*discoveryv1.EndpointSlice{web}},
		{"session-affinity", testConfig, []*corev1.Service{affinity},
			[]*discoveryv1.EndpointSlice{slice("default", "sticky", "sticky-1", "", 80, ep{ip: "10.42.1.5"}, ep{ip: "10.42.2.5"})}},
		{"external-traffic-policy-local", testConfig, []*corev1.Service{etpLocal}, []*discoveryv1.EndpointSlice{web}},
		{"external-traffic-policy-local-none-here", testConfig, []*corev1.Service{etpLocalNone},
			[]*discoveryv1.EndpointSlice{slice("default", "web", "web-abc", "", 8080, ep{ip: "10.42.1.5"})}},
		{"internal-traffic-policy-local", testConfig, []*corev1.Service{itpLocal}, []*discoveryv1.EndpointSlice{web}},
		{"internal-traffic-policy-local-none-here", testConfig, []*corev1.Service{itpLocal},
			[]*discoveryv1.EndpointSlice{slice("default", "web", "web-abc", "", 8080, ep{ip: "10.42.1.5"})}},
		{"named-target-ports", testConfig, []*corev1.Service{named}, []*discoveryv1.EndpointSlice{namedSlice}},
		{"not-ready-endpoints", testConfig, []*corev1.Service{svc("default", "web", "10.43.0.20", 80)},
			[]*discoveryv1.EndpointSlice{slice("default", "web", "web-abc", "", 8080, ep{ip: "10.42.1.5", notReady: true}, ep{ip: "10.42.1.6"})}},
		{"terminating-fallback", testConfig, []*corev1.Service{svc("default", "web", "10.43.0.20", 80)},
			[]*discoveryv1.EndpointSlice{slice("default", "web", "web-abc", "", 8080, ep{ip: "10.42.1.5", notReady: true}, ep{ip: "10.42.1.6", term: true})}},
		{"headless-and-externalname", testConfig, []*corev1.Service{headless, external},
			[]*discoveryv1.EndpointSlice{slice("default", "db", "db-1", "", 5432, ep{ip: "10.42.1.9"})}},
		{"multiple-slices", testConfig, []*corev1.Service{svc("default", "web", "10.43.0.20", 80)}, []*discoveryv1.EndpointSlice{
			slice("default", "web", "web-1", "", 8080, ep{ip: "10.42.1.5"}),
			slice("default", "web", "web-2", "", 8080, ep{ip: "10.42.2.5"}, ep{ip: "10.42.1.5"}),
			slice("other", "web", "web-3", "", 8080, ep{ip: "10.42.3.5"}),
		}},
		{"dns", dnsCfg, nil, nil},
	}
}

func TestCompileGolden(t *testing.T) {
	for _, tc := range compileCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := Compile(tc.cfg, tc.services, tc.slices).String()
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("Compile output differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff lists the lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if g[l] == 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if w[l] == 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

func TestChainNamesAreStableAndBounded(t *testing.T) {
	long := strings.Repeat("x", 300)
	a, b := chainName("svc", long+"a"), chainName("svc", long+"b")
	if len(a) > maxNameLen || a == b {
		t.Errorf("long names: %q (%d) and %q must differ and fit %d bytes", a, len(a), b, maxNameLen)
	}
	if chainName("ep", "default/web/tcp/") != chainName("ep", "default/web/tcp/") {
		t.Error("chain names are not stable")
	}
}
