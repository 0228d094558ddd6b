package envvar

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// masterService is the service of the default namespace whose variables
// every pod gets, whatever its enableServiceLinks says.
const masterService = "kubernetes"

// serviceEnv returns the service-link variables of a pod in namespace ns,
// as the kubelet computes them: the default namespace's kubernetes service
// always, and the services of ns when links are enabled (a service of ns
// named kubernetes replacing the default one).
func serviceEnv(ns string, links bool, services []*corev1.Service) []corev1.EnvVar {
	chosen := map[string]*corev1.Service{}
	for _, s := range services {
		if s == nil || !clusterIPSet(s) {
			continue
		}
		switch {
		case s.Namespace == "default" && s.Name == masterService:
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		case s.Namespace == ns && links:
			chosen[s.Name] = s
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []corev1.EnvVar
	for _, n := range names {
		out = append(out, serviceVars(chosen[n])...)
	}
	return out
}

func clusterIPSet(s *corev1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone
}

// serviceVars are the NAME_SERVICE_* and Docker-link NAME_PORT_* variables
// of one service.
func serviceVars(s *corev1.Service) []corev1.EnvVar {
	if len(s.Spec.Ports) == 0 {
		return nil
	}
	prefix := varName(s.Name)
	ip := s.Spec.ClusterIP
	port := prefix + "_SERVICE_PORT"
	out := []corev1.EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: ip},
		{Name: port, Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			out = append(out, corev1.EnvVar{Name: port + "_" + varName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != "" {
			proto = string(p.Protocol)
		}
		lower := strings.ToLower(proto)
		url := fmt.Sprintf("%s://%s", lower, net.JoinHostPort(ip, strconv.Itoa(int(p.Port))))
		if i == 0 {
			out = append(out, corev1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		out = append(out,
			corev1.EnvVar{Name: pp, Value: url},
			corev1.EnvVar{Name: pp + "_PROTO", Value: lower},
			corev1.EnvVar{Name: pp + "_PORT", Value: strconv.Itoa(int(p.Port))},
			corev1.EnvVar{Name: pp + "_ADDR", Value: ip},
		)
	}
	return out
}

// varName turns a service or port name into a variable name part.
func varName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}
