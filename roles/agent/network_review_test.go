package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/mizzen-dev/mizzen/internal/apiclient"
)

func quietLog() (*logrus.Entry, *logtest.Hook) {
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l), hook
}

func warnings(hook *logtest.Hook) []string {
	var out []string
	for _, e := range hook.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			out = append(out, e.Message)
		}
	}
	return out
}

// An agent stopped while the server cannot answer stops quietly.
func TestFetchClusterStoppedLogsNoWarning(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cancel() // SIGTERM while the request is under way
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client, err := apiclient.New(apiclient.Config{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	log, hook := quietLog()
	if _, err := fetchCluster(ctx, nil, client, log); !errors.Is(err, context.Canceled) {
		t.Fatalf("fetchCluster: %v, want context.Canceled", err)
	}
	if w := warnings(hook); len(w) != 0 {
		t.Fatalf("warnings on a stop: %q", w)
	}
}

// A pod network that fails to start is retried while the node says why
// it is not ready; it no longer ends the agent.
func TestNetworkStartIsRetried(t *testing.T) {
	log, hook := quietLog()
	d := &netDeps{ready: make(chan struct{}), log: log}
	if err := d.readyErr(); !errors.Is(err, errNetworkNotReady) {
		t.Fatalf("readyErr before start: %v", err)
	}
	var calls atomic.Int32
	ok := d.start(context.Background(), func(context.Context) error {
		if calls.Add(1) == 1 {
			return errors.New("xtables lock busy")
		}
		if err := d.readyErr(); err == nil || !strings.Contains(err.Error(), "pod network: xtables lock busy") {
			t.Errorf("readyErr while retrying: %v", err)
		}
		return nil
	})
	if !ok || calls.Load() != 2 {
		t.Fatalf("start: %v after %d calls", ok, calls.Load())
	}
	if w := warnings(hook); len(w) != 1 || !strings.Contains(w[0], "retrying") {
		t.Fatalf("warnings: %q", w)
	}
}

// Stopped while the network keeps failing: start returns at once, quietly
// for the failure the stop caused.
func TestNetworkStartStoppedWhileRetrying(t *testing.T) {
	log, _ := quietLog()
	d := &netDeps{ready: make(chan struct{}), log: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	var calls atomic.Int32
	go func() {
		done <- d.start(ctx, func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				cancel()
			}
			return ctx.Err()
		})
	}()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("start reported success after the stop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("start did not return after the stop")
	}
}
