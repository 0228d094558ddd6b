package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// tickStats answers Stats as Docker does, at a collection tick shared by
// every container: a call returns once want calls wait for the tick (or
// fails after a while when they never do).
type tickStats struct {
	runtime.Runtime
	arrived chan struct{}
	want    int
}

func (s tickStats) Stats(ctx context.Context, id string) (runtime.ContainerStats, error) {
	s.arrived <- struct{}{}
	deadline := time.After(5 * time.Second)
	for len(s.arrived) < s.want {
		select {
		case <-deadline:
			return runtime.ContainerStats{}, errors.New("sampled alone")
		case <-time.After(time.Millisecond):
		}
	}
	return s.Runtime.Stats(ctx, id)
}

// The summary samples a node's containers together, not in turn: Docker
// answers each request at its next tick, up to a second later.
func TestStatsSummarySamplesContainersTogether(t *testing.T) {
	k := newKubelet(t)
	cfg := k.config(t)
	// app and talker run for the test's length; slow may have exited.
	cfg.Runtime = tickStats{Runtime: k.rt, arrived: make(chan struct{}, 16), want: 2}
	ro := httptestServer(t, server.ReadOnlyHandler(cfg))
	resp, err := http.Get(ro + "/stats/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum server.Summary
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Pods) != 1 {
		t.Fatalf("pods %+v", sum.Pods)
	}
	got := map[string]bool{}
	for _, c := range sum.Pods[0].Containers {
		got[c.Name] = true
	}
	if !got["app"] || !got["talker"] {
		t.Errorf("containers sampled %v, want app and talker", got)
	}
}

// /metrics carries the Go runtime and process metrics as the kubelet's
// does (go_goroutines is how a stream or log leak shows).
func TestMetricsIncludeGoRuntime(t *testing.T) {
	k := newKubelet(t)
	ro := httptestServer(t, server.ReadOnlyHandler(k.config(t)))
	resp, err := http.Get(ro + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"go_goroutines ", "process_resident_memory_bytes ", "kubelet_running_pods "} {
		if !strings.Contains(string(b), "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
