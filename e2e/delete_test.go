package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFinalizersHoldDeletionUntilEmptied(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}`, "create", "-f", "-")
	s.kubectl("delete", "cm", "held", "--wait=false")
	ts := s.kubectl("get", "cm", "held", "-o", "jsonpath={.metadata.deletionTimestamp}")
	if ts == "" {
		t.Fatal("deleted object with a finalizer has no deletionTimestamp")
	}
	s.kubectl("patch", "cm", "held", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	eventually(t, 10*time.Second, func() error {
		if _, err := s.kubectlErr("get", "cm", "held"); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
}

func TestPropagationPolicyRecordedAsFinalizer(t *testing.T) {
	s := startServer(t)
	// The garbage collector acts on these finalizers at once: a blocking
	// dependent that lingers keeps the foreground one in place.
	s.kubectl("create", "configmap", "owner")
	s.createOwned("owner", "held", true, `,"finalizers":["example.com/hold"]`)
	s.kubectl("delete", "cm", "owner", "--cascade=foreground", "--wait=false")
	fins := s.kubectl("get", "cm", "owner", "-o", "jsonpath={.metadata.finalizers}")
	if !strings.Contains(fins, "foregroundDeletion") {
		t.Fatalf("foreground delete recorded finalizers %q", fins)
	}
	s.kubectl("patch", "cm", "held", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	// The orphan finalizer shows in its effect: the dependent survives
	// its owner, without the reference.
	s.kubectl("create", "configmap", "orphaner")
	s.createOwned("orphaner", "orphan", true, "")
	s.kubectl("delete", "cm", "orphaner", "--cascade=orphan", "--timeout=30s")
	if refs := s.kubectl("get", "cm", "orphan", "-o", "jsonpath={.metadata.ownerReferences}"); refs != "" {
		t.Fatalf("orphan delete left owner references %s", refs)
	}
}

const boundPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`

func TestPodBindingAndGracefulDeletion(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(boundPod, "create", "-f", "-")
	c := s.adminClient(t)
	bind := func() *http.Response {
		resp, err := c.Post(s.url()+"/api/v1/namespaces/default/pods/p/binding", "application/json",
			strings.NewReader(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := bind(); resp.StatusCode != 201 {
		t.Fatalf("binding: %d", resp.StatusCode)
	}
	if got := s.kubectl("get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"); got != "n1" {
		t.Fatalf("nodeName %q", got)
	}
	if resp := bind(); resp.StatusCode != 409 {
		t.Fatalf("second binding: %d, want 409", resp.StatusCode)
	}
	// Bound to a node, the pod gets its grace period: it is marked, not removed.
	s.kubectl("delete", "pod", "p", "--wait=false")
	if got := s.kubectl("get", "pod", "p", "-o", "jsonpath={.metadata.deletionGracePeriodSeconds}"); got != "30" {
		t.Fatalf("deletionGracePeriodSeconds %q", got)
	}
	out := s.kubectl("get", "pod", "p")
	mustContain(t, out, "Terminating")
	s.kubectl("delete", "pod", "p", "--grace-period=0", "--force")
	if _, err := s.kubectlErr("get", "pod", "p"); err == nil {
		t.Fatal("force-deleted pod still exists")
	}
	// An unbound pod goes at once.
	s.kubectlInOK(boundPod, "create", "-f", "-")
	s.kubectl("delete", "pod", "p", "--wait=false")
	if _, err := s.kubectlErr("get", "pod", "p"); err == nil {
		t.Fatal("unscheduled pod lingers after delete")
	}
}

func TestDeleteCollectionAndPreconditions(t *testing.T) {
	s := startServer(t)
	for _, n := range []string{"a", "b", "c"} {
		s.kubectl("create", "configmap", n)
	}
	s.kubectl("label", "cm", "a", "b", "gone=yes")
	c := s.adminClient(t)
	req, _ := http.NewRequest(http.MethodDelete, s.url()+"/api/v1/namespaces/default/configmaps?labelSelector=gone%3Dyes", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Kind  string     `json:"kind"`
		Items []struct{} `json:"items"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if resp.StatusCode != 200 || list.Kind != "ConfigMapList" || len(list.Items) != 2 {
		t.Fatalf("deletecollection: %d %+v", resp.StatusCode, list)
	}
	out := s.kubectl("get", "cm", "-o", "name")
	if strings.Contains(out, "configmap/a") || strings.Contains(out, "configmap/b") || !strings.Contains(out, "configmap/c") {
		t.Fatalf("after deletecollection:\n%s", out)
	}
	// A delete whose resourceVersion precondition is stale conflicts.
	req, _ = http.NewRequest(http.MethodDelete, s.url()+"/api/v1/namespaces/default/configmaps/c",
		strings.NewReader(`{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"resourceVersion":"1"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 409 {
		t.Fatalf("stale precondition: %d, want 409", resp.StatusCode)
	}
}
