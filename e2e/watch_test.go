package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestKubectlGetWatchSeesEvents(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "first")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlPath(t), "--kubeconfig", s.kubeconfig, "get", "configmaps", "-w", "--output-watch-events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	defer func() { cancel(); cmd.Wait() }()
	has := func(parts ...string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range lines {
				f := strings.Fields(l)
				if len(f) >= len(parts) && strings.Join(f[:len(parts)], " ") == strings.Join(parts, " ") {
					return nil
				}
			}
			return fmt.Errorf("no line starting %q in %q", parts, lines)
		}
	}
	eventually(t, 20*time.Second, has("ADDED", "first"))
	s.kubectl("create", "configmap", "second")
	eventually(t, 20*time.Second, has("ADDED", "second"))
	s.kubectl("label", "configmap", "second", "x=y")
	eventually(t, 20*time.Second, has("MODIFIED", "second"))
	s.kubectl("delete", "configmap", "second")
	eventually(t, 20*time.Second, has("DELETED", "second"))
}

type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name            string            `json:"name"`
			ResourceVersion string            `json:"resourceVersion"`
			Annotations     map[string]string `json:"annotations"`
		} `json:"metadata"`
		Code int `json:"code"`
	} `json:"object"`
}

// readEvents reads n watch events from a JSON watch stream.
func readEvents(t *testing.T, body io.Reader, n int) []watchEvent {
	t.Helper()
	dec := json.NewDecoder(body)
	var out []watchEvent
	for len(out) < n {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

func TestWatchSendInitialEventsEndsWithBookmark(t *testing.T) {
	s := startServer(t)
	s.kubectl("create", "configmap", "a")
	s.kubectl("create", "configmap", "b")
	c := s.adminClient(t)
	resp, err := c.Get(s.url() + "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	evs := readEvents(t, resp.Body, 3)
	if evs[0].Type != "ADDED" || evs[0].Object.Metadata.Name != "a" || evs[1].Type != "ADDED" || evs[1].Object.Metadata.Name != "b" {
		t.Fatalf("initial events: %+v", evs[:2])
	}
	bm := evs[2]
	if bm.Type != "BOOKMARK" || bm.Object.Metadata.Annotations["k8s.io/initial-events-end"] != "true" || bm.Object.Metadata.ResourceVersion == "" {
		t.Fatalf("third event is not the initial-events-end bookmark: %+v", bm)
	}
	s.kubectl("create", "configmap", "c")
	if ev := readEvents(t, resp.Body, 1)[0]; ev.Type != "ADDED" || ev.Object.Metadata.Name != "c" {
		t.Fatalf("event after bookmark: %+v", ev)
	}
}

func TestWatchFromResourceVersionAndGoneAfterCompaction(t *testing.T) {
	s := startServer(t)
	rv := s.kubectl("create", "configmap", "a", "-o", "jsonpath={.metadata.resourceVersion}")
	s.kubectl("label", "configmap", "a", "x=1")
	s.kubectl("delete", "configmap", "a")
	c := s.adminClient(t)
	resp, err := c.Get(s.url() + "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5&resourceVersion=" + rv)
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, resp.Body, 2)
	resp.Body.Close()
	if evs[0].Type != "MODIFIED" || evs[1].Type != "DELETED" {
		t.Fatalf("events after %s: %+v", rv, evs)
	}
	// A resourceVersion older than etcd's history gets 410 Gone.
	resp, err = c.Get(s.url() + "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5&resourceVersion=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 410 {
		return
	}
	ev := readEvents(t, resp.Body, 1)[0]
	if ev.Type != "ERROR" || ev.Object.Code != 410 {
		// History from revision 1 is still there on a fresh server: then
		// the first event is the creation of a bootstrap object.
		if ev.Type == "ADDED" {
			t.Skip("etcd history not compacted yet")
		}
		t.Fatalf("watch from compacted revision: %+v", ev)
	}
}
