package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/snapshot"
)

// ResetMessage is what --cluster-reset says when it is done (k3s's words).
const ResetMessage = "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now"

// etcdConfig is the embedded (or external) etcd the server opens.
func etcdConfig(cfg Config) datastore.Config {
	serverDir := filepath.Join(cfg.DataDir, "server")
	return datastore.Config{
		Dir: filepath.Join(serverDir, "db", "etcd"), TLSDir: filepath.Join(serverDir, "tls", "etcd"),
		Endpoints: cfg.DatastoreEndpoints,
		CAFile:    cfg.DatastoreCAFile, CertFile: cfg.DatastoreCertFile, KeyFile: cfg.DatastoreKeyFile,
		ClientPort: cfg.EtcdClientPort, PeerPort: cfg.EtcdPeerPort, Log: cfg.Log.WithField("component", "etcd"),
	}
}

// clusterReset makes the embedded etcd a single-member cluster again, from
// its own data or from the snapshot cfg.ClusterResetRestorePath (the old
// data moved aside to db/etcd-old-<time>), checks that it starts, and
// returns: the server must then be started without --cluster-reset.
func clusterReset(ctx context.Context, cfg Config) error {
	if len(cfg.DatastoreEndpoints) > 0 {
		return errors.New("--cluster-reset needs the embedded etcd; it does not apply to --datastore-endpoint")
	}
	ec := etcdConfig(cfg)
	running, err := snapshot.Running(ec.Dir)
	if err != nil {
		return fmt.Errorf("cluster reset: %w", err)
	}
	if running {
		return fmt.Errorf("cluster reset: a mizzen server is running with --data-dir %s (its etcd holds %s); stop it first", cfg.DataDir, ec.Dir)
	}
	_, statErr := os.Stat(filepath.Join(ec.Dir, "member"))
	rollback := func(err error) error { return err }
	if path := cfg.ClusterResetRestorePath; path != "" {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("--cluster-reset-restore-path: %w", err)
		}
		old := filepath.Join(filepath.Dir(ec.Dir), "etcd-old-"+strconv.FormatInt(time.Now().Unix(), 10))
		if statErr == nil {
			if err := os.Rename(ec.Dir, old); err != nil {
				return fmt.Errorf("move the old etcd data aside: %w", err)
			}
			cfg.Log.WithField("dir", old).Info("moved the old etcd data aside")
		} else if err := os.RemoveAll(ec.Dir); err != nil {
			return err
		}
		// A restore that fails, or whose etcd does not start, leaves the
		// data directory as it was.
		rollback = func(err error) error {
			if rerr := os.RemoveAll(ec.Dir); rerr != nil {
				return fmt.Errorf("%w (and removing the restored data failed: %v; the old data is in %s)", err, rerr, old)
			}
			if statErr != nil {
				return err
			}
			if rerr := os.Rename(old, ec.Dir); rerr != nil {
				return fmt.Errorf("%w (and putting the old data back failed: %v; it is in %s)", err, rerr, old)
			}
			cfg.Log.WithField("dir", ec.Dir).Info("put the old etcd data back")
			return err
		}
		err := snapshot.Restore(snapshot.RestoreConfig{
			Snapshot: path, Dir: ec.Dir, Name: datastore.MemberName, PeerURL: datastore.PeerURL(cfg.EtcdPeerPort),
		})
		if err != nil {
			return rollback(err)
		}
		cfg.Log.WithField("snapshot", path).Info("restored etcd snapshot")
	} else {
		if statErr != nil {
			return fmt.Errorf("cluster reset: no etcd data in %s to reset", ec.Dir)
		}
		ec.ForceNewCluster = true
	}
	ds, err := datastore.Open(ctx, ec)
	if err != nil {
		return rollback(fmt.Errorf("cluster reset: start etcd: %w", err))
	}
	if err := ds.Close(); err != nil {
		return fmt.Errorf("cluster reset: stop etcd: %w", err)
	}
	cfg.Log.Info(ResetMessage)
	return nil
}

// snapshotScheduler is the component taking scheduled etcd snapshots, or
// nil when they are off (or etcd is external).
func snapshotScheduler(cfg Config, ds *datastore.Datastore) (*snapshot.Scheduler, error) {
	if len(cfg.DatastoreEndpoints) > 0 || cfg.EtcdDisableSnapshots || cfg.EtcdSnapshotScheduleCron == "" {
		return nil, nil
	}
	sched, err := snapshot.ParseSchedule(cfg.EtcdSnapshotScheduleCron)
	if err != nil {
		return nil, err
	}
	node := cfg.NodeName
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node name for etcd snapshots: %w", err)
		}
		node = strings.ToLower(h)
	}
	dir := cfg.EtcdSnapshotDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "server", "db", "snapshots")
	}
	return &snapshot.Scheduler{
		Store: snapshot.Store{Dir: dir}, Source: ds.Client, Schedule: sched, Node: node,
		Retention: max(cfg.EtcdSnapshotRetention, 1), Log: cfg.Log.WithField("component", "etcd-snapshot"),
	}, nil
}
