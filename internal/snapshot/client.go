package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Dial connects to the embedded etcd of a running server on
// 127.0.0.1:port with the client certificate in tlsDir
// (DATA/server/tls/etcd), and checks that it answers.
func Dial(ctx context.Context, tlsDir string, port int) (*clientv3.Client, error) {
	info := transport.TLSInfo{
		CertFile:      filepath.Join(tlsDir, "client.crt"),
		KeyFile:       filepath.Join(tlsDir, "client.key"),
		TrustedCAFile: filepath.Join(tlsDir, "server-ca.crt"),
	}
	for _, f := range []string{info.CertFile, info.KeyFile, info.TrustedCAFile} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w (is the data directory a mizzen server's, started at least once?)", err)
		}
	}
	tlsConfig, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	endpoint := "https://127.0.0.1:" + strconv.Itoa(port)
	c, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, TLS: tlsConfig, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", endpoint, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(sctx, endpoint); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd at %s does not answer (is mizzen server running with this --data-dir and --etcd-client-port?): %w", endpoint, err)
	}
	return c, nil
}

// Running reports whether an etcd has the data directory dir open: its
// database file is locked while it runs.
func Running(dir string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, "member", "snap", "db"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
