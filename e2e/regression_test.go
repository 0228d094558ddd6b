package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentPatchesAllLand: patches carry no resourceVersion, so the
// server retries them on conflicts instead of failing.
func TestConcurrentPatchesAllLand(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "c")
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.kubectlErr("patch", "cm", "c", "--type=merge", "-p", fmt.Sprintf(`{"data":{"k%d":"v"}}`, i))
			if err != nil {
				errs <- out
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent patch failed: %s", e)
	}
	var data map[string]string
	json.Unmarshal([]byte(s.kubectl("get", "cm", "c", "-o", "jsonpath={.data}")), &data)
	if len(data) != 20 {
		t.Fatalf("%d of 20 patches landed: %v", len(data), data)
	}
}

func TestUpdateDuringGracePeriodKeepsPod(t *testing.T) {
	s := startServer(t)
	s.kubectlInOK(strings.Replace(boundPod, `"spec":{`, `"spec":{"nodeName":"n1",`, 1), "create", "-f", "-")
	s.kubectl("delete", "pod", "p", "--wait=false")
	s.kubectl("label", "pod", "p", "foo=bar")
	if got := s.kubectl("get", "pod", "p", "-o", "jsonpath={.metadata.labels.foo}"); got != "bar" {
		t.Fatalf("label on terminating pod: %q", got)
	}
}

func TestDryRunDoesNotHoldNodePorts(t *testing.T) {
	s := startServer(t)
	svc := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"np"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}`
	s.kubectlInOK(svc, "create", "-f", "-", "--dry-run=server")
	s.kubectlInOK(svc, "create", "-f", "-")
	mustContain(t, s.kubectl("get", "svc", "np"), "80:30080/TCP")
	// A second create of the same object fails (as in Kubernetes, the
	// allocator refuses the port first) but the first keeps its port.
	if out, err := s.kubectlIn(svc, "create", "-f", "-"); err == nil {
		t.Fatalf("duplicate create succeeded: %s", out)
	}
	other := strings.Replace(svc, `"name":"np"`, `"name":"np2"`, 1)
	if out, err := s.kubectlIn(other, "create", "-f", "-"); err == nil || !strings.Contains(out, "provided port is already allocated") {
		t.Fatalf("port of an existing service handed out again: %v %s", err, out)
	}
}

func TestWatchMediaTypesAndTooLargeResourceVersion(t *testing.T) {
	s := startServer(t)
	c := s.adminClient(t)
	req, _ := http.NewRequest(http.MethodGet, s.url()+"/api/v1/namespaces/default/configmaps?watch=1", nil)
	req.Header.Set("Accept", "application/yaml")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("YAML watch: %d, want 406", resp.StatusCode)
	}
	resp, err = c.Get(s.url() + "/api/v1/namespaces/default/configmaps?resourceVersion=99999999")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Code    int `json:"code"`
		Details struct {
			Causes []struct {
				Reason string `json:"reason"`
			} `json:"causes"`
		} `json:"details"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Code != 504 || len(st.Details.Causes) != 1 || st.Details.Causes[0].Reason != "ResourceVersionTooLarge" {
		t.Fatalf("too large resourceVersion: %+v", st)
	}
}
