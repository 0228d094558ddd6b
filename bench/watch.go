package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// receipt is one watcher seeing one version of the watched object.
type receipt struct {
	rv string
	at time.Time
}

// fanoutResult is the watch fan-out figure.
type fanoutResult struct {
	setup         time.Duration // all watches established
	afterResponse timing        // update response → last watcher's receipt
	afterRequest  timing        // update request sent → last watcher's receipt
}

// watchFanout opens watchers client-go watches on one namespace's
// ConfigMaps, then updates one ConfigMap rounds times and measures when
// the last watcher has the change. A first round warms up and is not
// counted.
func watchFanout(ctx context.Context, cs *kubernetes.Clientset, ns string, watchers, rounds int) (fanoutResult, error) {
	var res fanoutResult
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, configMap("watched", 64), metav1.CreateOptions{})
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recv := make(chan receipt, watchers*(rounds+2))
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()

	start := time.Now()
	// Not errgroup.WithContext: its context ends when Wait returns, and
	// the watches must outlive it.
	var g errgroup.Group
	g.SetLimit(32)
	for range watchers {
		g.Go(func() error {
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
			if err != nil {
				return err
			}
			readers.Go(func() {
				defer w.Stop()
				for {
					select {
					case ev, ok := <-w.ResultChan():
						if !ok {
							return
						}
						obj, ok := ev.Object.(*corev1.ConfigMap)
						if !ok {
							continue
						}
						select {
						case recv <- receipt{obj.ResourceVersion, time.Now()}:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("open watches: %w", err)
	}
	res.setup = time.Since(start)

	var afterResp, afterReq []time.Duration
	for round := range rounds + 1 {
		cm.Data["round"] = strconv.Itoa(round)
		sent := time.Now()
		updated, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil {
			return res, err
		}
		answered := time.Now()
		cm = updated
		last, err := collect(ctx, recv, updated.ResourceVersion, watchers)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", round, err)
		}
		if round == 0 {
			continue
		}
		afterResp = append(afterResp, max(0, last.Sub(answered)))
		afterReq = append(afterReq, last.Sub(sent))
	}
	res.afterResponse, res.afterRequest = summarize(afterResp), summarize(afterReq)
	return res, nil
}

// collect waits for n receipts of version rv and returns the latest
// receipt time.
func collect(ctx context.Context, recv <-chan receipt, rv string, n int) (time.Time, error) {
	var last time.Time
	timeout := time.After(30 * time.Second)
	for got := 0; got < n; {
		select {
		case r := <-recv:
			if r.rv != rv {
				continue
			}
			got++
			if r.at.After(last) {
				last = r.at
			}
		case <-timeout:
			return last, fmt.Errorf("only %d of %d watchers saw resourceVersion %s after 30s", got, n, rv)
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
	return last, nil
}
