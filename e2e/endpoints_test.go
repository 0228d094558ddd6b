package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const endpointsFixture = `
apiVersion: v1
kind: Node
metadata:
  name: n1
---
apiVersion: v1
kind: Service
metadata:
  name: svc
  labels: {team: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  ports:
  - {port: 80}
` + endpointsPods

const endpointsPods = `
---
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: web}}
spec:
  nodeName: n1
  containers:
  - {name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, labels: {app: web}}
spec:
  nodeName: n1
  containers:
  - {name: c, image: busybox, ports: [{name: http, containerPort: 9090}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p3, labels: {app: web}}
spec:
  nodeName: n1
  containers:
  - {name: c, image: busybox}
`

// setPodStatus marks a pod Running with ip and Ready=ready, as a kubelet
// would.
func (s *server) setPodStatus(pod, ip string, ready bool) {
	s.t.Helper()
	st := "False"
	if ready {
		st = "True"
	}
	s.kubectl("patch", "pod", pod, "--subresource=status", "--type=merge", "-p",
		fmt.Sprintf(`{"status":{"phase":"Running","podIP":%q,"podIPs":[{"ip":%q}],"conditions":[{"type":"Ready","status":%q}]}}`, ip, ip, st))
}

// waitOutput polls kubectl until its output contains every want.
func (s *server) waitOutput(t *testing.T, args []string, want ...string) string {
	t.Helper()
	var out string
	eventually(t, 20*time.Second, func() error {
		var err error
		if out, err = s.kubectlErr(args...); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("%q not in:\n%s", w, out)
			}
		}
		return nil
	})
	return out
}

func TestEndpointsAndSlicesFollowPods(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(endpointsFixture, "apply", "-f", "-")
	s.setPodStatus("p1", "10.42.0.5", true)
	s.setPodStatus("p2", "10.42.0.6", true)
	s.setPodStatus("p3", "10.42.0.7", true)

	// Named target port resolved per pod; p3 has no "http" port.
	ep := []string{"get", "endpoints", "svc", "-o", "jsonpath={range .subsets[*]}{.addresses[*].ip}:{.ports[*].port} {end}"}
	s.waitOutput(t, ep, "10.42.0.5:8080", "10.42.0.6:9090")
	if out := s.kubectl(ep...); strings.Contains(out, "10.42.0.7") {
		t.Errorf("pod without the named port in endpoints: %s", out)
	}
	mustContain(t, s.kubectl("get", "endpoints", "svc"), "10.42.0.5:8080", "10.42.0.6:9090")
	ref := s.kubectl("get", "endpoints", "svc", "-o", "jsonpath={.subsets[*].addresses[*].targetRef.name} {.subsets[*].addresses[*].nodeName}")
	mustContain(t, ref, "p1", "p2", "n1")

	sel := []string{"get", "endpointslices", "-l", "kubernetes.io/service-name=svc"}
	out := s.waitOutput(t, sel, "10.42.0.5", "10.42.0.6", "10.42.0.7", "IPv4")
	t.Logf("slices:\n%s", out)
	meta := s.kubectl(append(sel, "-o", `jsonpath={range .items[*]}{.metadata.generateName} {.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{"\n"}{end}`)...)
	for _, l := range strings.Split(strings.TrimSpace(meta), "\n") {
		if l != "svc- endpointslice-controller.k8s.io Service/svc" {
			t.Errorf("slice meta %q", l)
		}
	}

	// A pod that stops being ready moves to notReadyAddresses.
	s.setPodStatus("p2", "10.42.0.6", false)
	s.waitOutput(t, []string{"get", "endpoints", "svc", "-o", "jsonpath={.subsets[*].notReadyAddresses[*].ip}"}, "10.42.0.6")
	s.waitOutput(t, append(sel, "-o", `jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready}{"\n"}{end}`),
		"10.42.0.6=false", "10.42.0.5=true")

	// A terminating pod leaves the Endpoints but stays in its slice,
	// marked terminating.
	s.kubectl("delete", "pod", "p1", "--wait=false")
	eventually(t, 20*time.Second, func() error {
		if out := s.kubectl(ep...); strings.Contains(out, "10.42.0.5") {
			return fmt.Errorf("terminating pod still in endpoints: %s", out)
		}
		return nil
	})
	s.waitOutput(t, append(sel, "-o", `jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.terminating}{"\n"}{end}`),
		"10.42.0.5=true")

	// Nothing changes while nothing happens: no churn of the objects.
	rvs := func() string {
		return s.kubectl("get", "endpoints", "svc", "-o", "jsonpath={.metadata.resourceVersion}") +
			s.kubectl(append(sel, "-o", "jsonpath={.items[*].metadata.resourceVersion}")...)
	}
	before := rvs()
	time.Sleep(time.Second) // a window for any spurious write to show
	if after := rvs(); after != before {
		t.Errorf("endpoints rewritten while nothing changed: %s -> %s", before, after)
	}

	// A service without a selector is the user's: no endpoints made.
	if out, err := s.kubectlErr("get", "endpoints", "manual"); err == nil {
		t.Errorf("endpoints made for a selectorless service: %s", out)
	}
	// The API server's own endpoints are left as it keeps them.
	if out := s.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes", "-o", "name"); strings.TrimSpace(out) != "endpointslice.discovery.k8s.io/kubernetes" {
		t.Errorf("slices of the kubernetes service: %s", out)
	}

	// Deleting the service removes its endpoints and slices.
	s.kubectl("delete", "service", "svc")
	eventually(t, 20*time.Second, func() error {
		if out, err := s.kubectlErr("get", "endpoints", "svc"); err == nil {
			return fmt.Errorf("endpoints remain: %s", out)
		}
		if out := s.kubectl(append(sel, "-o", "name")...); strings.TrimSpace(out) != "" {
			return fmt.Errorf("slices remain: %s", out)
		}
		return nil
	})
}
