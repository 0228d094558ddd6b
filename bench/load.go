package main

import (
	"path/filepath"

	"context"
	"errors"
	"fmt"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const mediaProtobuf = "application/vnd.kubernetes.protobuf"

// restConfig is the admin client config with client-side rate limits
// lifted and protobuf on the wire, as Kubernetes' own components use.
// (client-go's typed clients send JSON unless told otherwise.)
func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.ContentType = mediaProtobuf
	cfg.AcceptContentTypes = mediaProtobuf + ",application/json"
	return cfg, nil
}

// newClient returns a clientset. With ownConn it dials its own
// connection: client-go otherwise shares one transport (one HTTP/2
// connection) between all clients of the same config.
func newClient(base *rest.Config, ownConn bool) (*kubernetes.Clientset, error) {
	cfg := rest.CopyConfig(base)
	if ownConn {
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return kubernetes.NewForConfig(cfg)
}

// opsResult summarises a closed-loop load run.
type opsResult struct {
	ops, errs int
	firstErr  error
	elapsed   time.Duration
	lat       []time.Duration // sorted
}

func (r opsResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// pct returns the q-quantile (0..1) of sorted durations.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

func (r opsResult) String() string {
	s := fmt.Sprintf("%.0f ops/s (%d in %.1f s), p50 %s, p99 %s", r.rate(), r.ops, r.elapsed.Seconds(),
		ms(pct(r.lat, 0.5)), ms(pct(r.lat, 0.99)))
	if r.errs > 0 {
		s += fmt.Sprintf(", %d errors (first: %v)", r.errs, r.firstErr)
	}
	return s
}

// runOps calls op from workers goroutines, each op after the previous one
// returned, until n ops were started or d has passed.
func runOps(ctx context.Context, workers, n int, d time.Duration, op func(ctx context.Context, worker, i int) error) opsResult {
	var next atomic.Int64
	var mu sync.Mutex
	var res opsResult
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var firstErr error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t := time.Now()
				if err := op(ctx, w, i); err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ops = len(res.lat)
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	return res
}

// configMap returns a ConfigMap whose data holds size bytes.
func configMap(name string, size int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Data:       map[string]string{"payload": strings.Repeat("x", size)},
	}
}

// createNamespace creates a namespace for a phase of the benchmark.
func createNamespace(ctx context.Context, cs *kubernetes.Clientset, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}

// apiCreates creates ConfigMaps from workers clients, each with its own
// connection.
func apiCreates(ctx context.Context, cfg *rest.Config, ns string, workers, n int, d time.Duration, size int) (opsResult, error) {
	clients := make([]*kubernetes.Clientset, workers)
	for i := range clients {
		var err error
		if clients[i], err = newClient(cfg, true); err != nil {
			return opsResult{}, err
		}
	}
	return runOps(ctx, workers, n, d, func(ctx context.Context, w, i int) error {
		_, err := clients[w].CoreV1().ConfigMaps(ns).Create(ctx, configMap(fmt.Sprintf("cm-%06d", i), size), metav1.CreateOptions{})
		return err
	}), nil
}

// etcdCreates writes value-sized keys under prefix from workers etcd
// clients, each a create-if-absent transaction as the API server's
// storage does, then deletes them.
func etcdCreates(ctx context.Context, endpoint etcdEndpoint, prefix string, workers, n int, d time.Duration, size int) (opsResult, error) {
	clients := make([]*clientv3.Client, workers)
	for i := range clients {
		c, err := endpoint.client()
		if err != nil {
			return opsResult{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	value := strings.Repeat("v", size)
	res := runOps(ctx, workers, n, d, func(ctx context.Context, w, i int) error {
		key := fmt.Sprintf("%s%06d", prefix, i)
		resp, err := clients[w].Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, value)).Commit()
		if err == nil && !resp.Succeeded {
			err = errors.New("key exists: " + key)
		}
		return err
	})
	_, err := clients[0].Delete(ctx, prefix, clientv3.WithPrefix())
	return res, err
}

// etcdRevision returns etcd's current revision.
func etcdRevision(ctx context.Context, endpoint etcdEndpoint) (int64, error) {
	c, err := endpoint.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	resp, err := c.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// storedSize returns the size of the value etcd holds at key.
func storedSize(ctx context.Context, endpoint etcdEndpoint, key string) (int, error) {
	c, err := endpoint.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	resp, err := c.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, fmt.Errorf("no key %s in etcd", key)
	}
	return len(resp.Kvs[0].Value), nil
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

// etcdEndpoint is the server's embedded etcd and the client certificate
// (in its data directory) that etcd requires.
type etcdEndpoint struct {
	addr   string
	tlsDir string
}

func (e etcdEndpoint) client() (*clientv3.Client, error) {
	info := transport.TLSInfo{
		TrustedCAFile: filepath.Join(e.tlsDir, "server-ca.crt"),
		CertFile:      filepath.Join(e.tlsDir, "client.crt"),
		KeyFile:       filepath.Join(e.tlsDir, "client.key"),
	}
	tlsConfig, err := info.ClientConfig()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: []string{"https://" + e.addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), TLS: tlsConfig})
}
