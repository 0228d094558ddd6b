package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/mizzen-dev/mizzen/internal/controller"
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
// host name) and its data directory, stable across restarts, so that a
// restarted server takes its leases back at once, and distinct for two
// servers on one host.
func identity(cfg Config) string {
	name := cfg.NodeName
	if name == "" {
		name, _ = os.Hostname()
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	sum := sha256.Sum256([]byte(dir))
	return fmt.Sprintf("%s_%x", name, sum[:4])
}
