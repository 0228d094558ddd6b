package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNamespaceDeletionRemovesContent(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "namespace", "doomed")
	s.kubectl("create", "configmap", "c", "-n", "doomed", "--from-literal=a=1")
	s.kubectl("create", "secret", "generic", "s", "-n", "doomed", "--from-literal=a=1")
	s.kubectl("create", "service", "clusterip", "svc", "-n", "doomed", "--tcp=80:80")
	s.kubectl("create", "configmap", "bystander", "--from-literal=a=1")

	// kubectl waits until the namespace is gone.
	start := time.Now()
	s.kubectl("delete", "namespace", "doomed", "--timeout=50s")
	t.Logf("namespace deleted in %v", time.Since(start).Round(time.Millisecond))
	if out, err := s.kubectlErr("get", "namespace", "doomed"); err == nil || !strings.Contains(out, "NotFound") {
		t.Fatalf("namespace still there: %v %s", err, out)
	}
	if out := s.kubectl("get", "configmaps,secrets,services", "-A", "-o", "name", "--field-selector", "metadata.namespace=doomed"); strings.TrimSpace(out) != "" {
		t.Fatalf("content left behind: %s", out)
	}
	s.kubectl("get", "configmap", "bystander")

	// The namespace can be created again, empty.
	s.kubectl("create", "namespace", "doomed")
	if out := s.kubectl("get", "configmaps", "-n", "doomed", "-o", "name"); strings.Contains(out, "configmap/c") {
		t.Fatalf("old content in the new namespace: %s", out)
	}
}

func TestNamespaceReportsContentThatRemains(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "namespace", "held")
	s.kubectlInOK(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep","namespace":"held","finalizers":["example.com/hold"]}}`, "create", "-f", "-")
	s.kubectl("delete", "namespace", "held", "--wait=false")
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("get", "namespace", "held", "-o",
			`jsonpath={range .status.conditions[*]}{.type}={.status}:{.reason}:{.message}{"\n"}{end}`)
		for _, want := range []string{
			"NamespaceContentRemaining=True:SomeResourcesRemain:Some resources are remaining: configmaps. has 1 resource instances",
			"NamespaceFinalizersRemaining=True:SomeFinalizersRemain:Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",
		} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("conditions lack %q:\n%s", want, out)
			}
		}
		return nil
	})
	mustContain(t, s.kubectl("get", "namespace", "held"), "Terminating")
	s.kubectl("patch", "configmap", "keep", "-n", "held", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	eventually(t, 20*time.Second, func() error {
		if out, err := s.kubectlErr("get", "namespace", "held"); err == nil {
			return fmt.Errorf("namespace still there: %s", out)
		}
		return nil
	})
}

func TestNamespaceForegroundDeletionWaitsForContent(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "namespace", "fg")
	s.kubectlInOK(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep","namespace":"fg","finalizers":["example.com/hold"]}}`, "create", "-f", "-")
	s.kubectl("create", "secret", "generic", "s", "-n", "fg", "--from-literal=a=1")
	s.kubectl("delete", "namespace", "fg", "--cascade=foreground", "--wait=false")
	eventually(t, 20*time.Second, func() error {
		if out, err := s.kubectlErr("get", "secret", "s", "-n", "fg"); err == nil {
			return fmt.Errorf("secret still there: %s", out)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if out := s.kubectl("get", "namespace", "fg"); !strings.Contains(out, "Terminating") {
			return fmt.Errorf("namespace not Terminating: %s", out)
		}
		return nil
	})
	s.kubectl("patch", "configmap", "keep", "-n", "fg", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	eventually(t, 20*time.Second, func() error {
		if out, err := s.kubectlErr("get", "namespace", "fg"); err == nil {
			return fmt.Errorf("namespace still there: %s", out)
		}
		return nil
	})
}
