// Package group runs a role's long-running components together: the
// first to fail stops the others, and one that returns early, without an
// error, counts as failed (the oklog/run semantics).
package group

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// Group is a set of components sharing one context.
type Group struct {
	g   *errgroup.Group
	ctx context.Context
}

// New returns a Group and the context its components run with, which
// ends when ctx does or a component fails.
func New(ctx context.Context) (*Group, context.Context) {
	g, gctx := errgroup.WithContext(ctx)
	return &Group{g: g, ctx: gctx}, gctx
}

// Go runs the component name until the group's context ends.
func (g *Group) Go(name string, run func(context.Context) error) {
	g.g.Go(func() error {
		err := run(g.ctx)
		if err == nil && g.ctx.Err() == nil {
			err = fmt.Errorf("%s stopped unexpectedly", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Wait waits for every component and returns the first failure, or nil
// for a stop by cancellation.
func (g *Group) Wait() error {
	err := g.g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Serve is a component serving srv on ln; requests get its context, and
// when that ends the server shuts down, giving requests 5 s to finish.
func Serve(srv *http.Server, ln net.Listener) func(context.Context) error {
	return func(ctx context.Context) error {
		srv.BaseContext = func(net.Listener) context.Context { return ctx }
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			<-errc
			return nil
		}
	}
}
