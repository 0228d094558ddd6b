package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/daemonset"
	"github.com/mizzen-dev/mizzen/internal/controller/deployment"
	"github.com/mizzen-dev/mizzen/internal/controller/endpoints"
	"github.com/mizzen-dev/mizzen/internal/controller/gc"
	"github.com/mizzen-dev/mizzen/internal/controller/job"
	"github.com/mizzen-dev/mizzen/internal/controller/namespace"
	"github.com/mizzen-dev/mizzen/internal/controller/nodeipam"
	"github.com/mizzen-dev/mizzen/internal/controller/nodelifecycle"
	"github.com/mizzen-dev/mizzen/internal/controller/podgc"
	"github.com/mizzen-dev/mizzen/internal/controller/replicaset"
	"github.com/mizzen-dev/mizzen/internal/scheduler"
)

// component is a named long-running goroutine of the controller manager.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// controllers returns the controller manager's controllers, built from env.
// Each entry is one controller package's New(env).Run.
func controllers(env controller.Env) []component {
	return []component{
		{"namespace", namespace.New(env).Run},
		{"garbagecollector", gc.New(env).Run},
		{"deployment", deployment.New(env).Run},
		{"endpoints", endpoints.New(env).Run},
		{"nodeipam", nodeipam.New(env).Run},
		{"podgc", podgc.New(env).Run},
		{"replicaset", replicaset.New(env).Run},
		{"job", job.New(env).Run},
		{"scheduler", scheduler.New(env).Run},
		{"nodelifecycle", nodelifecycle.New(env).Run},
		{"daemonset", daemonset.New(env).Run},
		// controllers: add one line per controller above this comment.
	}
}

// runAll runs comps until ctx is done; a component that stops early, with
// or without an error, stops them all.
func runAll(ctx context.Context, comps []component) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, comp := range comps {
		g.Go(func() error {
			err := comp.run(gctx)
			if err == nil && gctx.Err() == nil {
				err = fmt.Errorf("%s stopped unexpectedly", comp.name)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", comp.name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// identity names this server in leader-election Leases: the node name (or
// host name) and a random id kept in DATA/server/identity, stable across
// restarts (a restarted server takes its leases back at once) and distinct
// for two servers even on cloned hosts with the same name.
func identity(cfg Config) string {
	name := cfg.NodeName
	if name == "" {
		name, _ = os.Hostname()
	}
	path := filepath.Join(cfg.DataDir, "server", "identity")
	id, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(id))) == 0 {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = []byte(hex.EncodeToString(b))
		_ = os.WriteFile(path, id, 0o600)
	}
	return name + "_" + strings.TrimSpace(string(id))
}
