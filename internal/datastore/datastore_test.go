package datastore

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func open(t *testing.T, cfg Config) *Datastore {
	t.Helper()
	cfg.Log = logrus.NewEntry(logrus.New())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEmbeddedEtcdKeepsDataAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	cfg := Config{Dir: dir, ClientPort: freePort(t), PeerPort: freePort(t)}
	d := open(t, cfg)
	if _, err := d.Client.Put(context.Background(), "/registry/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "member")); err != nil {
		t.Fatalf("no etcd data in %s: %v", dir, err)
	}
	d = open(t, cfg)
	defer d.Close()
	resp, err := d.Client.Get(context.Background(), "/registry/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func TestExternalEndpointsReachTheSameEtcd(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	d := open(t, Config{Dir: filepath.Join(dir, "etcd"), ClientPort: port, PeerPort: freePort(t)})
	defer d.Close()
	tlsDir := filepath.Join(dir, "tls")
	x := open(t, Config{Endpoints: []string{"https://127.0.0.1:" + strconv.Itoa(port)},
		CAFile: filepath.Join(tlsDir, "server-ca.crt"), CertFile: filepath.Join(tlsDir, "client.crt"), KeyFile: filepath.Join(tlsDir, "client.key")})
	defer x.Close()
	if _, err := x.Client.Put(context.Background(), "/registry/ext", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := d.Client.Get(context.Background(), "/registry/ext")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("embedded does not see the external write: %v %v", resp, err)
	}
}

func TestEmbeddedEtcdRefusesClientsWithoutCertificate(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	d := open(t, Config{Dir: filepath.Join(dir, "etcd"), ClientPort: port, PeerPort: freePort(t)})
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, cfg := range []Config{
		{Endpoints: []string{"http://127.0.0.1:" + strconv.Itoa(port)}},
		{Endpoints: []string{"https://127.0.0.1:" + strconv.Itoa(port)}, CAFile: filepath.Join(dir, "tls", "server-ca.crt")},
	} {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		x, err := Open(cctx, cfg)
		ccancel()
		if err == nil {
			x.Close()
			t.Fatalf("%+v: connected without a client certificate", cfg)
		}
	}
}

func TestCompactorKeepsOneIntervalOfHistory(t *testing.T) {
	d := open(t, Config{Dir: filepath.Join(t.TempDir(), "etcd"), ClientPort: freePort(t), PeerPort: freePort(t)})
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := d.Client.Put(ctx, "/registry/c", "1")
	if err != nil {
		t.Fatal(err)
	}
	c := &Compactor{Client: d.Client, Interval: 20 * time.Millisecond, Log: logrus.NewEntry(logrus.New())}
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.Client.Put(ctx, "/registry/c", "more")
		_, err := d.Client.Get(ctx, "/registry/c", clientv3.WithRev(first.Header.Revision))
		if err != nil {
			break // compacted
		}
		if time.Now().After(deadline) {
			t.Fatal("history never compacted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("compactor returned %v on a clean stop", err)
	}
}
