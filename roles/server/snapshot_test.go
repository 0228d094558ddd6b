package server

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/snapshot"
)

func TestClusterResetWithoutRestoreKeepsTheData(t *testing.T) {
	ports := make([]int, 2)
	for i := range ports {
		p, err := etcdtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	log := logrus.New()
	log.SetOutput(t.Output())
	cfg := Config{DataDir: t.TempDir(), EtcdClientPort: ports[0], EtcdPeerPort: ports[1], ClusterReset: true, Log: log.WithField("component", "server")}
	ctx := context.Background()

	if err := clusterReset(ctx, cfg); err == nil || !strings.Contains(err.Error(), "no etcd data") {
		t.Errorf("reset of an empty data dir: %v", err)
	}
	ds, err := datastore.Open(ctx, etcdConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Client.Put(ctx, "/registry/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := clusterReset(ctx, cfg); err == nil || !strings.Contains(err.Error(), "is running") {
		t.Errorf("reset while etcd runs: %v", err)
	}
	ds.Close()
	if err := clusterReset(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	ds, err = datastore.Open(ctx, etcdConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	resp, err := ds.Client.Get(ctx, "/registry/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Errorf("after reset: %v %v", resp, err)
	}
	members, err := ds.Client.MemberList(ctx)
	if err != nil || len(members.Members) != 1 {
		t.Errorf("members after reset: %v %v", members, err)
	}

	cfg.DatastoreEndpoints = []string{"https://127.0.0.1:1"}
	if err := clusterReset(ctx, cfg); err == nil || !strings.Contains(err.Error(), "embedded etcd") {
		t.Errorf("reset with an external datastore: %v", err)
	}
}

// A restore whose etcd then fails to start puts the old data back.
func TestClusterResetRestoreThatFailsToStartKeepsTheOldData(t *testing.T) {
	ports := make([]int, 2)
	for i := range ports {
		p, err := etcdtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	log := logrus.New()
	log.SetOutput(t.Output())
	cfg := Config{DataDir: t.TempDir(), EtcdClientPort: ports[0], EtcdPeerPort: ports[1], Log: log.WithField("component", "server")}
	ctx := context.Background()
	ds, err := datastore.Open(ctx, etcdConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Client.Put(ctx, "/registry/k", "before"); err != nil {
		t.Fatal(err)
	}
	store := snapshot.Store{Dir: filepath.Join(cfg.DataDir, "server", "db", "snapshots")}
	info, err := store.Save(ctx, ds.Client, "snap-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Client.Put(ctx, "/registry/k", "after"); err != nil {
		t.Fatal(err)
	}
	ds.Close()

	// etcd cannot listen: the restored data never starts.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(cfg.EtcdClientPort))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterReset, cfg.ClusterResetRestorePath = true, info.Path
	err = clusterReset(ctx, cfg)
	ln.Close()
	if err == nil {
		t.Fatal("reset succeeded with etcd's client port taken")
	}
	t.Log(err)
	if old, _ := filepath.Glob(filepath.Join(cfg.DataDir, "server", "db", "etcd-old-*")); len(old) != 0 {
		t.Errorf("old data left aside in %v after a failed reset", old)
	}
	ds, err = datastore.Open(ctx, etcdConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	resp, err := ds.Client.Get(ctx, "/registry/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "after" {
		t.Errorf("after a failed reset: %v %v, want the data as it was", resp, err)
	}
}
