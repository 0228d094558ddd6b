package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
)

// openEtcd starts an embedded etcd on dir (TLS material in tlsDir).
func openEtcd(t *testing.T, dir, tlsDir string, peer int) *datastore.Datastore {
	t.Helper()
	client, err := etcdtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(t.Output())
	ds, err := datastore.Open(context.Background(), datastore.Config{
		Dir: dir, TLSDir: tlsDir, ClientPort: client, PeerPort: peer, Log: log.WithField("component", "etcd"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func get(t *testing.T, c *clientv3.Client, key string) (string, int64) {
	t.Helper()
	resp, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
}

func TestRestoreBringsBackKeysAtTheirRevisions(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tlsDir := filepath.Join(root, "tls")
	peer, err := etcdtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ds := openEtcd(t, filepath.Join(root, "etcd"), tlsDir, peer)
	for i := range 20 {
		if _, err := ds.Client.Put(ctx, fmt.Sprintf("/registry/configmaps/default/cm%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	_, rev := get(t, ds.Client, "/registry/configmaps/default/cm19")
	if running, err := Running(filepath.Join(root, "etcd")); err != nil || !running {
		t.Errorf("Running on an open etcd = %v, %v", running, err)
	}
	// The in-process client, as the server's scheduler uses it.
	store := Store{Dir: filepath.Join(root, "snapshots")}
	info, err := store.Save(ctx, ds.Client, "before-n-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Client.Delete(ctx, "/registry/configmaps/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	ds.Close()
	if running, err := Running(filepath.Join(root, "etcd")); err != nil || running {
		t.Errorf("Running on a stopped etcd = %v, %v", running, err)
	}

	restored := filepath.Join(root, "restored")
	if err := Restore(RestoreConfig{Snapshot: info.Path, Dir: restored, Name: datastore.MemberName, PeerURL: datastore.PeerURL(peer)}); err != nil {
		t.Fatal(err)
	}
	if err := Restore(RestoreConfig{Snapshot: info.Path, Dir: restored, Name: datastore.MemberName, PeerURL: datastore.PeerURL(peer)}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore into a restored dir: %v, want not empty", err)
	}
	for range 2 { // and again after a restart of the restored member
		ds = openEtcd(t, restored, tlsDir, peer)
		if v, r := get(t, ds.Client, "/registry/configmaps/default/cm19"); v != "19" || r != rev {
			t.Errorf("restored cm19 = %q at %d, want 19 at %d", v, r, rev)
		}
		put, err := ds.Client.Put(ctx, "/registry/after", "x")
		if err != nil {
			t.Fatal(err)
		}
		if put.Header.Revision <= rev {
			t.Errorf("a write after restore got revision %d, not past %d", put.Header.Revision, rev)
		}
		if v, _ := get(t, ds.Client, "/registry/after"); v != "x" {
			t.Errorf("a write after restore reads back %q", v)
		}
		ds.Close()
	}
}

func TestRestoreRejectsWhatIsNotASnapshot(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"text", []byte("hello"), "not an etcd database"},
		{"bad checksum", append(database(3), make([]byte, 32)...), "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name)
			os.WriteFile(f, tc.content, 0o600)
			err := Restore(RestoreConfig{Snapshot: f, Dir: filepath.Join(dir, tc.name+".etcd"), Name: "m", PeerURL: "https://127.0.0.1:2380"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore = %v, want %q", err, tc.want)
			}
		})
	}
}
