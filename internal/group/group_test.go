package group

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestEarlyReturnStopsTheGroup(t *testing.T) {
	g, ctx := New(context.Background())
	g.Go("waiter", func(ctx context.Context) error { <-ctx.Done(); return nil })
	g.Go("quitter", func(context.Context) error { return nil })
	err := g.Wait()
	if err == nil || !strings.Contains(err.Error(), "quitter stopped unexpectedly") {
		t.Fatalf("Wait: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the group's context was not cancelled")
	}
}

func TestCancellationIsACleanStop(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	g, _ := New(parent)
	g.Go("a", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	g.Go("b", func(ctx context.Context) error { <-ctx.Done(); return nil })
	cancel()
	if err := g.Wait(); err != nil {
		t.Fatalf("Wait after cancel: %v", err)
	}
}

func TestFailureIsNamed(t *testing.T) {
	g, _ := New(context.Background())
	boom := errors.New("boom")
	g.Go("etcd", func(context.Context) error { return boom })
	if err := g.Wait(); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "etcd: ") {
		t.Fatalf("Wait: %v", err)
	}
}
