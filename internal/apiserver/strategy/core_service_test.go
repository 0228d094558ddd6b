package strategy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

func newService() *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "1"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		},
	}
	strategyFor("", "services").Default(svc)
	return svc
}

func TestServiceDefaultsMatchKubernetes(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec corev1.ServiceSpec
		want corev1.ServiceSpec
	}{
		{
			name: "cluster IP",
			spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
			want: corev1.ServiceSpec{
				Selector:              map[string]string{"app": "web"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: ptrTo(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        ptrTo(corev1.IPFamilyPolicySingleStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "node port with user cluster IP",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.43.0.10", Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeNodePort,
				ClusterIP:             "10.43.0.10",
				ClusterIPs:            []string{"10.43.0.10"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
				SessionAffinity:       corev1.ServiceAffinityNone,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy: ptrTo(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        ptrTo(corev1.IPFamilyPolicySingleStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "headless without selector",
			spec: corev1.ServiceSpec{ClusterIP: "None"},
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeClusterIP,
				ClusterIP:             "None",
				ClusterIPs:            []string{"None"},
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: ptrTo(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        ptrTo(corev1.IPFamilyPolicyRequireDualStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "load balancer with client IP affinity",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityClientIP},
			want: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeLoadBalancer,
				SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{
					TimeoutSeconds: ptrTo(int32(10800)),
				}},
				ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy:         ptrTo(corev1.ServiceInternalTrafficPolicyCluster),
				AllocateLoadBalancerNodePorts: ptrTo(true),
				IPFamilyPolicy:                ptrTo(corev1.IPFamilyPolicySingleStack),
				IPFamilies:                    []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "external name",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
			want: corev1.ServiceSpec{
				Type:            corev1.ServiceTypeExternalName,
				ExternalName:    "example.com",
				SessionAffinity: corev1.ServiceAffinityNone,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: tc.spec}
			strategyFor("", "services").Default(svc)
			if delta := diff.Diff(tc.want, svc.Spec); delta != "" {
				t.Errorf("spec (-want +got):\n%s", delta)
			}
		})
	}
}

func TestServiceValidation(t *testing.T) {
	nameMsg := validation.IsDNS1035Label("1web")[0]
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{"valid", func(*corev1.Service) {}, nil},
		{"valid headless without ports", func(s *corev1.Service) {
			s.Spec.Ports = nil
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, nil},
		{"name must be a DNS-1035 label", func(s *corev1.Service) { s.Name = "1web" },
			[]string{`metadata.name: Invalid value: "1web": ` + nameMsg}},
		{"ports required", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{"spec.ports: Required value"}},
		{"port names required when many", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443, Protocol: "TCP", TargetPort: intstr.FromInt32(443)})
		}, []string{"spec.ports[0].name: Required value"}},
		{"duplicate port names", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				{Name: "http", Port: 81, Protocol: "TCP", TargetPort: intstr.FromInt32(81)},
			}
		}, []string{`spec.ports[1].name: Duplicate value: "http"`}},
		{"port out of range", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0; s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) },
			[]string{"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"}},
		{"unsupported type", func(s *corev1.Service) { s.Spec.Type = "Magic" },
			[]string{`spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`}},
		{"invalid selector", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "a b"} },
			[]string{`spec.selector: Invalid value: "a b": ` + content.IsLabelValue("a b")[0]}},
		{"invalid cluster IP", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.300", []string{"10.0.0.300"} },
			[]string{`spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`}},
		{"node port on cluster IP service", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 },
			[]string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"headless node port", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}, []string{`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`}},
		{"external name required", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, SessionAffinity: corev1.ServiceAffinityNone}
		}, []string{"spec.externalName: Required value"}},
		{"external traffic policy on cluster IP", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal },
			[]string{`spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services`}},
		{"session affinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" },
			[]string{`spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"`}},
		{"duplicate port", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "a", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(80)},
				{Name: "b", Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt32(81)},
			}
		}, []string{`spec.ports[1]: Duplicate value: {"protocol":"TCP","port":80,"targetPort":0}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService()
			tc.mutate(svc)
			expectErrors(t, strategyFor("", "services").Validate(svc), tc.want...)
		})
	}
}

func TestServiceClusterIPIsImmutable(t *testing.T) {
	allocated := newService()
	allocated.Spec.ClusterIP, allocated.Spec.ClusterIPs = "10.43.0.10", []string{"10.43.0.10"}
	for _, tc := range []struct {
		name   string
		old    *corev1.Service
		mutate func(*corev1.Service)
		want   []string
	}{
		{"allocated IP kept", allocated, func(*corev1.Service) {}, nil},
		{"unset IP set", newService(), func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.0.11", []string{"10.43.0.11"} }, nil},
		{"IP changed", allocated, func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.0.11", []string{"10.43.0.11"} },
			[]string{`spec.clusterIPs[0]: Invalid value: ["10.43.0.11"]: may not change once set`}},
		{"IP cleared", allocated, func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil },
			[]string{`spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset`}},
		{"ports changed", allocated, func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := tc.old.DeepCopy()
			tc.mutate(svc)
			expectErrors(t, strategyFor("", "services").ValidateUpdate(svc, tc.old), tc.want...)
		})
	}
}

func TestServiceCreateClearsStatus(t *testing.T) {
	svc := newService()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	strategyFor("", "services").PrepareForCreate(svc)
	if len(svc.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status kept: %+v", svc.Status)
	}
}

func TestServiceStatusUpdate(t *testing.T) {
	old := newService()
	svc := old.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3"}}
	expectErrors(t, strategyFor("", "services").ValidateStatusUpdate(svc, old),
		`status.loadBalancer.ingress[0].ip: Invalid value: "1.2.3": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`)
}
