// Package snapshot saves, lists, prunes and restores snapshots of the
// embedded etcd, kept as files in one directory (DATA/server/db/snapshots),
// the way k3s does: on-demand ones named <name>-<node>-<unix time>, scheduled
// ones etcd-snapshot-<node>-<unix time>.
package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// ScheduledPrefix names scheduled snapshots.
	ScheduledPrefix = "etcd-snapshot"
	// DefaultName names on-demand snapshots without --name.
	DefaultName = "on-demand"
)

// Source streams a snapshot of etcd's database followed by its sha256 (as
// etcd's Maintenance.Snapshot does).
type Source interface {
	Snapshot(ctx context.Context) (io.ReadCloser, error)
}

// Info describes one stored snapshot.
type Info struct {
	Name string
	Path string
	// Size is the file's size in bytes (the database and its checksum).
	Size int64
	// Created is the time in the name, or the file's mtime without one.
	Created time.Time
}

// Location is the snapshot's URL, as `k3s etcd-snapshot ls` shows it
// (with an absolute path, whatever the directory was given as).
func (i Info) Location() string {
	p, err := filepath.Abs(i.Path)
	if err != nil {
		p = i.Path
	}
	return "file://" + p
}

// Name is the file name of a snapshot taken at t on node: prefix-node-unix.
func Name(prefix, node string, t time.Time) string {
	return prefix + "-" + node + "-" + strconv.FormatInt(t.Unix(), 10)
}

// timestamp reads the unix time at the end of a snapshot's name.
func timestamp(name string) (time.Time, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// Store is a directory of snapshot files.
type Store struct {
	Dir string
}

// ValidName reports why name cannot be a snapshot's file name, or nil.
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%q is not a snapshot name", name)
	}
	return nil
}

// Save streams a snapshot from src into the file name, verifying etcd's
// checksum. The file appears whole or not at all (a temporary file and a
// link), with mode 0600, and an existing snapshot is never overwritten.
func (s Store) Save(ctx context.Context, src Source, name string) (Info, error) {
	if err := ValidName(name); err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("snapshot directory: %w", err)
	}
	path := filepath.Join(s.Dir, name)
	if _, err := os.Lstat(path); err == nil {
		return Info{}, fmt.Errorf("snapshot %s already exists", name)
	}
	rc, err := src.Snapshot(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.Dir, "."+name+".tmp*")
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	size, err := copyVerified(f, rc)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return Info{}, fmt.Errorf("snapshot %s already exists", name)
		}
		return Info{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	syncDir(s.Dir)
	created, ok := timestamp(name)
	if !ok {
		created = time.Now()
	}
	return Info{Name: name, Path: path, Size: size, Created: created}, nil
}

// copyVerified copies r to w and checks that its last 32 bytes are the
// sha256 of the bytes before them.
func copyVerified(w io.Writer, r io.Reader) (int64, error) {
	h := &trailerHash{h: sha256.New()}
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		return n, err
	}
	if n < sha256.Size || n%512 != sha256.Size {
		return n, fmt.Errorf("etcd sent %d bytes, not a database and its checksum", n)
	}
	if got := h.h.Sum(nil); string(got) != string(h.tail) {
		return n, errors.New("checksum mismatch: the snapshot is corrupt")
	}
	return n, nil
}

// trailerHash hashes everything written to it but the last sha256.Size
// bytes, which it keeps in tail.
type trailerHash struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	tail []byte
}

func (t *trailerHash) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if extra := len(t.tail) - sha256.Size; extra > 0 {
		t.h.Write(t.tail[:extra])
		t.tail = append(t.tail[:0], t.tail[extra:]...)
	}
	return len(p), nil
}

// syncDir makes a new directory entry durable; failures only cost
// durability on a crash, so they are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// List returns the stored snapshots, oldest first. A missing directory
// holds none.
func (s Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		created, ok := timestamp(e.Name())
		if !ok {
			created = fi.ModTime()
		}
		out = append(out, Info{Name: e.Name(), Path: filepath.Join(s.Dir, e.Name()), Size: fi.Size(), Created: created})
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// Delete removes the named snapshots. It removes every one it can and
// reports those that do not exist.
func (s Store) Delete(names ...string) error {
	var errs []error
	for _, name := range names {
		if err := ValidName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		path := filepath.Join(s.Dir, name)
		fi, err := os.Lstat(path)
		if err == nil && !fi.Mode().IsRegular() {
			err = os.ErrNotExist
		}
		if err == nil {
			err = os.Remove(path)
		}
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("no snapshot named %q in %s", name, s.Dir))
		case err != nil:
			errs = append(errs, fmt.Errorf("delete snapshot %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Prune deletes the oldest snapshots named prefix-node-<time> beyond the
// newest retain, and returns the names it deleted. Other snapshots (other
// names, other nodes) are left alone.
func (s Store) Prune(prefix, node string, retain int) ([]string, error) {
	if retain < 1 {
		return nil, fmt.Errorf("retention %d: keep at least one snapshot", retain)
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var ours []Info
	for _, i := range all {
		rest, ok := strings.CutPrefix(i.Name, prefix+"-"+node+"-")
		if _, err := strconv.ParseInt(rest, 10, 64); ok && err == nil {
			ours = append(ours, i)
		}
	}
	var deleted []string
	for len(ours) > retain {
		if err := s.Delete(ours[0].Name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, ours[0].Name)
		ours = ours[1:]
	}
	return deleted, nil
}
