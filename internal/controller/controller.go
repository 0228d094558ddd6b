// Package controller holds what every controller of mizzen's controller
// manager shares, in the shape of client-go's sample-controller: watches
// of the shared cache whose handlers only enqueue keys, typed listers
// over the cache, workers that sync one key at a time with rate-limited
// retries, an event recorder, and the Client through which controllers
// write (the API server's own admission path, in process).
package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/workqueue"
)

// Queue is a rate-limited queue of object keys ("namespace/name" or
// "name").
type Queue = workqueue.TypedRateLimitingInterface[string]

// NewQueue returns a queue with client-go's default controller back-off
// (5 ms doubling to 1000 s per key, 10 qps overall bucket of 100).
func NewQueue(name string) Queue {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// Key returns the queue key of an object: "namespace/name", or "name"
// for cluster-scoped objects.
func Key(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	if ns := m.GetNamespace(); ns != "" {
		return ns + "/" + m.GetName()
	}
	return m.GetName()
}

// SplitKey splits a queue key into namespace and name.
func SplitKey(key string) (namespace, name string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}

// Run runs workers that take keys from q and sync them until ctx is done;
// a sync that fails is retried with back-off, one that succeeds forgets
// the key's failures. It shuts q down on return.
func Run(ctx context.Context, q Queue, workers int, log *logrus.Entry, sync func(ctx context.Context, key string) error) error {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	done := make(chan struct{})
	for i := 0; i < workers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for processNext(ctx, q, log, sync) {
			}
		}()
	}
	for i := 0; i < workers; i++ {
		<-done
	}
	return nil
}

func processNext(ctx context.Context, q Queue, log *logrus.Entry, sync func(context.Context, string) error) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	start := time.Now()
	err := safeSync(ctx, key, sync)
	if err == nil {
		q.Forget(key)
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	log.WithError(err).WithFields(logrus.Fields{"key": key, "retries": q.NumRequeues(key),
		"elapsed": time.Since(start).Round(time.Microsecond)}).Debug("sync failed; retrying")
	q.AddRateLimited(key)
	return true
}

// safeSync turns a panic in sync into an error, so one bad object cannot
// stop the controller manager.
func safeSync(ctx context.Context, key string, sync func(context.Context, string) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sync %s panicked: %v", key, p)
		}
	}()
	return sync(ctx, key)
}
