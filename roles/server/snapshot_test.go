package server

import (
	"context"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
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
