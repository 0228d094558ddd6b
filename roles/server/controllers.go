package server

import (
	"context"

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
