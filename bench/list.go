package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// timing is the median, min and max of repeated runs.
type timing struct {
	runs          int
	med, min, max time.Duration
}

func summarize(ds []time.Duration) timing {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return timing{runs: len(s), med: s[len(s)/2], min: s[0], max: s[len(s)-1]}
}

func (t timing) String() string {
	return fmt.Sprintf("median %s (min %s, max %s, %d runs)", ms(t.med), ms(t.min), ms(t.max), t.runs)
}

// repeat runs f n times and summarises how long it took.
func repeat(n int, f func() error) (timing, error) {
	var ds []time.Duration
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			return timing{}, err
		}
		ds = append(ds, time.Since(t))
	}
	return summarize(ds), nil
}

// rawList times a full cluster-wide ConfigMap list in one media type,
// including reading the whole body but not decoding it.
func rawList(ctx context.Context, cs *kubernetes.Clientset, accept string, n int) (timing, int, error) {
	var size int
	t, err := repeat(n, func() error {
		b, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/configmaps").SetHeader("Accept", accept).DoRaw(ctx)
		size = len(b)
		return err
	})
	return t, size, err
}

// typedList times a full list through the typed client (protobuf,
// decoded into a ConfigMapList).
func typedList(ctx context.Context, cs *kubernetes.Clientset, n int) (timing, int, error) {
	var items int
	t, err := repeat(n, func() error {
		l, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
		if err == nil {
			items = len(l.Items)
		}
		return err
	})
	return t, items, err
}

// pagedList times a full list read in pages of limit items, as kubectl
// and informers read, and returns the number of pages.
func pagedList(ctx context.Context, cs *kubernetes.Clientset, limit int64, n int) (timing, int, error) {
	var pages int
	t, err := repeat(n, func() error {
		pages = 0
		opts := metav1.ListOptions{Limit: limit}
		for {
			l, err := cs.CoreV1().ConfigMaps("").List(ctx, opts)
			if err != nil {
				return err
			}
			pages++
			if l.Continue == "" {
				return nil
			}
			opts.Continue = l.Continue
		}
	})
	return t, pages, err
}

// kubectlGet times `kubectl get cm -A`, which asks for server-side
// tables in chunks of 500.
func kubectlGet(ctx context.Context, kubectl, kubeconfig, cacheDir string, n int) (timing, error) {
	return repeat(n, func() error {
		cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(cacheDir, "kubectl-cache"), "get", "cm", "-A")
		cmd.Stdout = io.Discard
		out, err := cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		msg, _ := io.ReadAll(out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("kubectl get cm -A: %v: %s", err, msg)
		}
		return nil
	})
}
