package snapshot

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/pkg/v3/pbutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/membership"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// RestoreConfig says what to restore where.
type RestoreConfig struct {
	// Snapshot is the snapshot file (from Save, or etcd's db file).
	Snapshot string
	// Dir is the etcd data directory to create; it must not exist yet (or
	// be empty).
	Dir string
	// Name and PeerURL describe the single member of the restored
	// cluster, as the embedded etcd is configured; ClusterToken is its
	// initial cluster token (etcd's default "etcd-cluster" when empty).
	Name, PeerURL, ClusterToken string
}

// Restore creates an etcd data directory holding the snapshot's keys, at
// their revisions, in a new single-member cluster, as `etcdutl snapshot
// restore` does: the database with its membership replaced, and a WAL whose
// raft snapshot makes the member start from it.
func Restore(cfg RestoreConfig) error {
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore into %s: the directory is not empty", cfg.Dir)
	}
	token := cfg.ClusterToken
	if token == "" {
		token = "etcd-cluster"
	}
	urls, err := types.NewURLsMap(cfg.Name + "=" + cfg.PeerURL)
	if err != nil {
		return fmt.Errorf("restore: member %s: %w", cfg.Name, err)
	}
	lg := zap.NewNop()
	cl, err := membership.NewClusterFromURLsMap(lg, token, urls)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	member := cl.MemberByName(cfg.Name)
	snapDir := filepath.Join(cfg.Dir, "member", "snap")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db := filepath.Join(snapDir, "db")
	if err := copyDB(db, cfg.Snapshot); err != nil {
		return fmt.Errorf("restore %s: %w", cfg.Snapshot, err)
	}
	if err := checkDB(db); err != nil {
		return fmt.Errorf("restore %s: %w", cfg.Snapshot, err)
	}

	// The raft log starts afresh: one entry adding the member, at index 1
	// and term 1, covered by a raft snapshot. The database must say it has
	// applied exactly that far, or etcd would skip (or miss) entries.
	const index, term = 1, 1
	be := backend.NewDefaultBackend(lg, db)
	mb := schema.NewMembershipBackend(lg, be)
	mb.MustCreateBackendBuckets()
	if err := mb.TrimMembershipFromBackend(); err != nil {
		be.Close()
		return fmt.Errorf("restore: trim membership: %w", err)
	}
	cl.SetBackend(mb)
	cl.AddMember(member, membership.ApplyBoth)
	tx := be.BatchTx()
	tx.LockOutsideApply()
	schema.UnsafeUpdateConsistentIndexForce(tx, index, term)
	tx.Unlock()
	be.ForceCommit()
	if err := be.Close(); err != nil {
		return fmt.Errorf("restore: close database: %w", err)
	}

	memberJSON, err := json.Marshal(member)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	id := uint64(member.ID)
	w, err := wal.Create(lg, filepath.Join(cfg.Dir, "member", "wal"), pbutil.MustMarshalMessage(&etcdserverpb.Metadata{
		NodeID: new(id), ClusterID: new(uint64(cl.ID())),
	}))
	if err != nil {
		return fmt.Errorf("restore: create WAL: %w", err)
	}
	add := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(id), Context: memberJSON}
	ents := []*raftpb.Entry{{
		Type: raftpb.EntryConfChange.Enum(), Term: new(uint64(term)), Index: new(uint64(index)),
		Data: pbutil.MustMarshalMessage(add),
	}}
	err = w.Save(&raftpb.HardState{Term: new(uint64(term)), Vote: new(id), Commit: new(uint64(index))}, ents)
	if err == nil {
		err = w.SaveSnapshot(&walpb.Snapshot{
			Index: new(uint64(index)), Term: new(uint64(term)), ConfState: &raftpb.ConfState{Voters: []uint64{id}},
		})
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: write WAL: %w", err)
	}
	return nil
}

// copyDB copies a snapshot to path, checking and dropping the sha256 that
// etcd appends to snapshots (a database copied from a data directory has
// none).
func copyDB(path, snapshot string) error {
	src, err := os.Open(snapshot)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	n, err := io.Copy(dst, src)
	if err != nil {
		return err
	}
	if n%512 == sha256.Size {
		if _, err := dst.Seek(n-sha256.Size, io.SeekStart); err != nil {
			return err
		}
		sum := make([]byte, sha256.Size)
		if _, err := io.ReadFull(dst, sum); err != nil {
			return err
		}
		if err := dst.Truncate(n - sha256.Size); err != nil {
			return err
		}
		if _, err := dst.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, dst); err != nil {
			return err
		}
		if string(h.Sum(nil)) != string(sum) {
			return errors.New("checksum mismatch: the snapshot is corrupt")
		}
	}
	return dst.Sync()
}

// checkDB makes sure path is an etcd database before etcd's backend, which
// panics on anything else, opens it.
func checkDB(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("not an etcd database: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("key")) == nil || tx.Bucket([]byte("meta")) == nil {
			return errors.New("not an etcd database: no key or meta bucket")
		}
		return nil
	})
}
