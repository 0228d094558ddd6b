package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// TestPodNetworkServicesAndDNS runs two agents, each in a lab host of its
// own, with the server on the lab bridge, once with each network backend:
// pods reach each other across nodes without NAT, a ClusterIP Service by
// address and by DNS name, a NodePort from outside, load balancing over
// three endpoints, an endpoint failing readiness dropped, a deleted
// Service's rules removed, and pod IPs and rules kept over an agent
// restart.
func TestPodNetworkServicesAndDNS(t *testing.T) {
	for _, backend := range []string{"vxlan", "host-gw"} {
		t.Run(backend, func(t *testing.T) { testPodNetwork(t, backend) })
	}
}

// webManifest is an httpd Deployment whose pods answer / with their
// hostname and /cgi-bin/ip with the client's address, and are ready while
// /tmp/ready exists.
const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      NODESELECTOR
      containers:
      - name: httpd
        image: IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c"]
        args:
        - |
          mkdir -p /www/cgi-bin
          hostname > /www/index.html
          printf '%s\n' '#!/bin/sh' 'echo Content-Type: text/plain' 'echo' 'echo $REMOTE_ADDR' > /www/cgi-bin/ip
          chmod +x /www/cgi-bin/ip
          touch /tmp/ready
          exec httpd -f -p 8080 -h /www
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`

func web(replicas int, node string) string {
	sel := ""
	if node != "" {
		sel = "nodeSelector: {kubernetes.io/hostname: " + node + "}"
	}
	return strings.NewReplacer("REPLICAS", fmt.Sprint(replicas), "NODESELECTOR", sel, "IMAGE", runtimetest.BusyboxImage).Replace(webManifest)
}

func testPodNetwork(t *testing.T, backend string) {
	requireDocker(t)
	s := startLabServer(t, "--network-backend", backend)
	nodeA, nodeB := uniqueNode("net-a"), uniqueNode("net-b")
	a := s.startAgent(nodeA, s.token())
	b := s.startAgent(nodeB, s.token())
	s.waitNodeReady(nodeA, 60*time.Second)
	s.waitNodeReady(nodeB, 60*time.Second)

	// A client on node A; the service's only endpoint on node B.
	client := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"client"},"spec":{"nodeName":%q,"terminationGracePeriodSeconds":1,"containers":[{"name":"c","image":%q,"imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`,
		nodeA, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(client, "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := s.kubectlIn(web(1, nodeB), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/client", "--for=condition=Ready", "--timeout=60s")
	s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
	clientIP := s.kubectl("get", "pod", "client", "-o", "jsonpath={.status.podIP}")
	webPods := s.pods("default", "app=web")
	if len(webPods) != 1 || webPods[0].Spec.NodeName != nodeB {
		t.Fatalf("web pods: %+v", webPods)
	}
	webIP, webName := webPods[0].Status.PodIP, webPods[0].Metadata.Name
	// Each node's pods get addresses of its own podCIDR.
	for _, p := range []struct{ node, ip string }{{nodeA, clientIP}, {nodeB, webIP}} {
		cidr := s.kubectl("get", "node", p.node, "-o", "jsonpath={.spec.podCIDR}")
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil || !prefix.Contains(netip.MustParseAddr(p.ip)) {
			t.Fatalf("pod IP %s is not in node %s's podCIDR %q", p.ip, p.node, cidr)
		}
	}

	fetch := func(url string) (string, error) {
		out, err := s.kubectlErr("exec", "client", "--", "sh", "-c", "timeout 5 wget -qO- "+url)
		return strings.TrimSpace(out), err
	}
	mustFetch := func(url, want string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			out, err := fetch(url)
			if err != nil || !strings.Contains(out, want) {
				return fmt.Errorf("wget %s: %v: %q, want %q", url, err, out, want)
			}
			return nil
		})
	}

	// Pod to pod across nodes, without NAT: the server sees the client's
	// own address.
	mustFetch("http://"+webIP+":8080/cgi-bin/ip", clientIP)
	// The ClusterIP, by address and by name.
	clusterIP := s.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
	mustFetch("http://"+clusterIP+"/", webName)
	mustFetch("http://web/", webName)
	mustFetch("http://web.default.svc.cluster.local/", webName)
	if out := s.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.43.0.10") ||
		!strings.Contains(out, "search default.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(out, "options ndots:5") {
		t.Fatalf("a ClusterFirst pod's resolv.conf:\n%s", out)
	}
	if out := s.kubectl("get", "svc", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"); out != "10.43.0.10" {
		t.Fatalf("kube-dns ClusterIP %q", out)
	}

	// A NodePort from outside the cluster (the root namespace), on both
	// nodes' addresses.
	nodePort := s.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
	hc := &http.Client{Timeout: 3 * time.Second}
	for _, ip := range []string{a.ip, b.ip} {
		url := "http://" + ip + ":" + nodePort + "/"
		eventually(t, 30*time.Second, func() error {
			resp, err := hc.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), webName) {
				return fmt.Errorf("GET %s: %q", url, body)
			}
			return nil
		})
	}

	// Three endpoints share 300 requests.
	s.kubectl("patch", "deployment", "web", "--type=json", `-p=[{"op":"remove","path":"/spec/template/spec/nodeSelector"},{"op":"replace","path":"/spec/replicas","value":3}]`)
	s.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
	eventually(t, 30*time.Second, func() error {
		if pods := s.pods("default", "app=web"); len(pods) != 3 {
			return fmt.Errorf("%d web pods, want the old one gone", len(pods))
		}
		if n := len(s.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", `jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]} {end}`)); n == 0 {
			return fmt.Errorf("no ready endpoints")
		}
		if got := strings.Fields(s.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", `jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]} {end}`)); len(got) != 3 {
			return fmt.Errorf("ready endpoints %v", got)
		}
		return nil
	})
	counts := spread(t, s, "http://"+clusterIP+"/", 300)
	names := []string{}
	for _, p := range s.pods("default", "app=web") {
		names = append(names, p.Metadata.Name)
		if counts[p.Metadata.Name] < 45 {
			t.Fatalf("300 requests spread %v: %s got under 15%%", counts, p.Metadata.Name)
		}
	}
	if len(names) != 3 {
		t.Fatalf("web pods %v", names)
	}

	// An endpoint failing its readiness probe gets no traffic 2 s later.
	unready := names[0]
	s.kubectl("exec", unready, "--", "rm", "/tmp/ready")
	failed := time.Now()
	eventually(t, 30*time.Second, func() error {
		out := s.kubectl("get", "pod", unready, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if out != "False" {
			return fmt.Errorf("pod %s Ready=%q", unready, out)
		}
		return nil
	})
	time.Sleep(time.Until(failed.Add(2 * time.Second)))
	if counts := spread(t, s, "http://"+clusterIP+"/", 60); counts[unready] != 0 {
		t.Fatalf("an unready endpoint got %d of 60 requests 2 s after failing: %v", counts[unready], counts)
	}

	// The agent restarted, after a crash and after a stop: pod IPs,
	// containers and rules stay.
	ipsBefore, restartsBefore := podIPs(s, nodeA), podRestarts(s, nodeA)
	a.kill()
	a.start()
	s.waitNodeReady(nodeA, 60*time.Second)
	mustFetch("http://web/", "web-")
	a.stop()
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("agent %s exited with %d on SIGTERM:\n%s", nodeA, code, a.logs())
	}
	a.start()
	s.waitNodeReady(nodeA, 60*time.Second)
	mustFetch("http://web/", "web-")
	if after := podIPs(s, nodeA); fmt.Sprint(after) != fmt.Sprint(ipsBefore) {
		t.Fatalf("pod IPs on %s changed over agent restarts: %v, then %v", nodeA, ipsBefore, after)
	}
	if after := podRestarts(s, nodeA); fmt.Sprint(after) != fmt.Sprint(restartsBefore) {
		t.Fatalf("containers on %s restarted over agent restarts: %v, then %v", nodeA, restartsBefore, after)
	}
	if out, err := inNetns(a.netns, "nft", "list", "table", "ip", "mizzen").CombinedOutput(); err != nil || !strings.Contains(string(out), clusterIP) {
		t.Fatalf("nft table after the restart: %v\n%s", err, out)
	}

	// A deleted Service's rules go, on both nodes.
	s.kubectl("delete", "svc", "web")
	for _, ag := range []*agentProc{a, b} {
		eventually(t, 10*time.Second, func() error {
			out, err := inNetns(ag.netns, "nft", "list", "table", "ip", "mizzen").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if strings.Contains(string(out), clusterIP) {
				return fmt.Errorf("node %s still has rules for %s", ag.node, clusterIP)
			}
			return nil
		})
	}
	if out, err := fetch("http://" + clusterIP + "/"); err == nil {
		t.Fatalf("deleted service still answers: %s", out)
	}
}

// spread fetches url n times from the client pod and counts the answers
// by the pod name they carry.
func spread(t *testing.T, s *server, url string, n int) map[string]int {
	t.Helper()
	out := s.kubectl("exec", "client", "--", "sh", "-c",
		fmt.Sprintf("for i in $(seq %d); do timeout 5 wget -qO- %s || echo FAILED; done", n, url))
	counts := map[string]int{}
	for _, l := range strings.Fields(out) {
		counts[l]++
	}
	if counts["FAILED"] > 0 {
		t.Fatalf("%d of %d requests failed: %v", counts["FAILED"], n, counts)
	}
	return counts
}

// podIPs returns "name=ip" of the pods on node, sorted by name.
func podIPs(s *server, node string) []string {
	out := s.kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName="+node, "--sort-by", ".metadata.name",
		"-o", `jsonpath={range .items[*]}{.metadata.name}={.status.podIP} {end}`)
	return strings.Fields(out)
}

// podRestarts returns "name=restartCounts" of the pods on node, sorted by
// name.
func podRestarts(s *server, node string) []string {
	out := s.kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName="+node, "--sort-by", ".metadata.name",
		"-o", `jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[*].restartCount} {end}`)
	return strings.Fields(out)
}

// TestPodNetworkOnTheServersNode runs pods on the server's own node, in the
// root network namespace where Docker's FORWARD policy drops what it does
// not know: pod to pod on the bridge, a pod reaching its own Service
// (hairpin), and pod egress to a host outside the cluster, masqueraded to
// the node's address, all pass through the agent's DOCKER-USER rules.
func TestPodNetworkOnTheServersNode(t *testing.T) {
	s := startLabNode(t)
	// A host outside the cluster, answering with the caller's address.
	outside, outsideIP := labHost(t)
	www := t.TempDir()
	if err := os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "cgi-bin", "ip"), []byte("#!/bin/busybox sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	httpd := inNetns(outside, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })

	client := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"client"},"spec":{"nodeName":%q,"terminationGracePeriodSeconds":1,"containers":[{"name":"c","image":%q,"imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`,
		s.node, runtimetest.BusyboxImage)
	if out, err := s.kubectlIn(client, "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := s.kubectlIn(web(1, s.node), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/client", "--for=condition=Ready", "--timeout=60s")
	s.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
	pods := s.pods("default", "app=web")
	if len(pods) != 1 {
		t.Fatalf("web pods: %+v", pods)
	}
	webIP, webName := pods[0].Status.PodIP, pods[0].Metadata.Name
	clientIP := s.kubectl("get", "pod", "client", "-o", "jsonpath={.status.podIP}")
	clusterIP := s.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

	from := func(pod, url, want string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			out, err := s.kubectlErr("exec", pod, "--", "sh", "-c", "timeout 5 wget -qO- "+url)
			if err != nil || !strings.Contains(out, want) {
				return fmt.Errorf("wget %s from %s: %v: %q, want %q", url, pod, err, out, want)
			}
			return nil
		})
	}
	from("client", "http://"+webIP+":8080/cgi-bin/ip", clientIP) // pod to pod, no NAT
	from("client", "http://"+clusterIP+"/", webName)
	from(webName, "http://"+clusterIP+"/", webName)                    // hairpin
	from("client", "http://"+outsideIP+":8080/cgi-bin/ip", labGateway) // egress, masqueraded
	if out := s.kubectl("exec", "client", "--", "nslookup", "web.default.svc.cluster.local"); !strings.Contains(out, clusterIP) {
		t.Fatalf("nslookup web:\n%s", out)
	}

	// dnsPolicy None takes the pod's dnsConfig alone; ClusterFirst adds it
	// to the cluster's, the pod's ndots replacing the policy's.
	for _, tc := range []struct{ name, policy, want string }{
		{"dns-none", "None", "search example.test\nnameserver 192.0.2.53\noptions ndots:2\n"},
		{"dns-merged", "ClusterFirst", "search default.svc.cluster.local svc.cluster.local cluster.local example.test\nnameserver 10.43.0.10\nnameserver 192.0.2.53\noptions ndots:2\n"},
	} {
		pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q},"spec":{"nodeName":%q,"terminationGracePeriodSeconds":1,"dnsPolicy":%q,
"dnsConfig":{"nameservers":["192.0.2.53"],"searches":["example.test"],"options":[{"name":"ndots","value":"2"}]},
"containers":[{"name":"c","image":%q,"imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`, tc.name, s.node, tc.policy, runtimetest.BusyboxImage)
		if out, err := s.kubectlIn(pod, "create", "-f", "-"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		s.kubectl("wait", "pod/"+tc.name, "--for=condition=Ready", "--timeout=60s")
		if out := s.kubectl("exec", tc.name, "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, tc.want) {
			t.Fatalf("dnsPolicy %s: resolv.conf\n%s\nwant it to hold\n%s", tc.policy, out, tc.want)
		}
	}
}
