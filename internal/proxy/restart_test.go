package proxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TestRestartedProxyKeepsEstablishedConnections: a new proxier (an agent
// restarted) replaces the table in one transaction; a connection made
// through the old table keeps flowing, its NAT being in conntrack.
func TestRestartedProxyKeepsEstablishedConnections(t *testing.T) {
	ns, h := testNetns(t)
	nsExec(t, ns, "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1")
	nsExec(t, ns, "ip", "link", "set", "dummy1", "up")
	nsExec(t, ns, "ip", "addr", "add", "10.99.0.10/24", "dev", "dummy0")
	nsExec(t, ns, "ip", "link", "set", "dummy0", "up")
	nsExec(t, ns, "ip", "route", "add", "default", "dev", "dummy0")

	// An echo server, line by line, on the endpoint.
	var ln net.Listener
	var err error
	inNetns(t, h, func() { ln, err = net.Listen("tcp", "10.99.0.10:8080") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()

	services := []*corev1.Service{svc("default", "echo", "10.43.0.60", 80)}
	slices := []*discoveryv1.EndpointSlice{slice("default", "echo", "echo-1", "", 8080, ep{ip: "10.99.0.10"})}
	first := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	if err := first.Sync(services, slices); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	inNetns(t, h, func() { c, err = net.DialTimeout("tcp", "10.43.0.60:80", 2*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	echo := func(msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg+"\n" {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	echo("before")

	// The restarted proxy: a full sync over the existing table, with the
	// service's ClusterIP now served by a changed ruleset (a new
	// service added) — the established connection is untouched.
	second := newProxier(testConfig, netlinkApplier{netnsFd: int(h)})
	services = append(services, svc("default", "other", "10.43.0.61", 80))
	if err := second.Sync(services, slices); err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, h, "mizzen"); got.String() != expectedView(Compile(testConfig, services, slices)).String() {
		t.Fatalf("table after the restart:\n%s", got)
	}
	echo("after")
}
