package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeSource streams db followed by its sha256 (or by sum, when set).
type fakeSource struct {
	db  []byte
	sum []byte
	err error
}

func (f fakeSource) Snapshot(context.Context) (io.ReadCloser, error) {
	if f.err != nil {
		return nil, f.err
	}
	sum := f.sum
	if sum == nil {
		s := sha256.Sum256(f.db)
		sum = s[:]
	}
	return io.NopCloser(bytes.NewReader(append(slices.Clone(f.db), sum...))), nil
}

func database(fill byte) []byte { return bytes.Repeat([]byte{fill}, 4096) }

func names(infos []Info) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

func TestSaveWritesAVerifiedFileWithMode0600(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "snapshots")}
	name := Name("before", "node-1", time.Unix(1700000000, 0))
	if name != "before-node-1-1700000000" {
		t.Fatalf("Name = %q", name)
	}
	info, err := s.Save(context.Background(), fakeSource{db: database(7)}, name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(info.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 4096+sha256.Size || info.Size != fi.Size() {
		t.Errorf("mode %v size %d (info %d), want 0600 and %d", fi.Mode().Perm(), fi.Size(), info.Size, 4096+sha256.Size)
	}
	if !info.Created.Equal(time.Unix(1700000000, 0)) || info.Location() != "file://"+filepath.Join(s.Dir, name) {
		t.Errorf("info = %+v, location %s", info, info.Location())
	}
	if _, err := s.Save(context.Background(), fakeSource{db: database(8)}, name); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second save under the same name: %v, want already exists", err)
	}
	if b, _ := os.ReadFile(info.Path); b[0] != 7 {
		t.Error("the existing snapshot was overwritten")
	}
}

func TestSaveFailuresLeaveNoFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  fakeSource
		want string
	}{
		{"corrupt", fakeSource{db: database(1), sum: bytes.Repeat([]byte{0}, sha256.Size)}, "checksum mismatch"},
		{"truncated", fakeSource{db: database(1)[:100]}, "not a database"},
		{"source error", fakeSource{err: errors.New("etcd is gone")}, "etcd is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Dir: t.TempDir()}
			_, err := s.Save(context.Background(), tc.src, "x-n-1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Save: %v, want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
				t.Errorf("left behind %v", entries)
			}
		})
	}
}

func TestListSortsByTimeAndSkipsTemporaryFiles(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for _, n := range []string{"b-n-300", "a-n-100", "etcd-snapshot-n-200", ".b-n-400.tmp123"} {
		if err := os.WriteFile(filepath.Join(s.Dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a-n-100", "etcd-snapshot-n-200", "b-n-300"}; !slices.Equal(names(got), want) {
		t.Errorf("List = %v, want %v", names(got), want)
	}
	if none, err := (Store{Dir: filepath.Join(s.Dir, "missing")}).List(); err != nil || len(none) != 0 {
		t.Errorf("List of a missing dir = %v, %v", none, err)
	}
}

func TestDeleteRemovesNamedAndReportsUnknown(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for _, n := range []string{"a-n-1", "b-n-2"} {
		os.WriteFile(filepath.Join(s.Dir, n), []byte("x"), 0o600)
	}
	for _, tc := range []struct {
		names   []string
		wantErr string
		left    []string
	}{
		{[]string{"a-n-1"}, "", []string{"b-n-2"}},
		{[]string{"nope", "b-n-2"}, `no snapshot named "nope"`, nil},
		{[]string{"../etc"}, "not a snapshot name", nil},
	} {
		err := s.Delete(tc.names...)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Delete(%v) = %v, want %q", tc.names, err, tc.wantErr)
		}
		got, _ := s.List()
		if !slices.Equal(names(got), tc.left) {
			t.Errorf("after Delete(%v): %v, want %v", tc.names, names(got), tc.left)
		}
	}
}

func TestPruneKeepsTheNewestOfOneNodesScheduledSnapshots(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for _, n := range []string{
		"etcd-snapshot-n-100", "etcd-snapshot-n-400", "etcd-snapshot-n-200", "etcd-snapshot-n-300",
		"etcd-snapshot-other-50", "on-demand-n-10", "etcd-snapshot-n-extra-20",
	} {
		os.WriteFile(filepath.Join(s.Dir, n), []byte("x"), 0o600)
	}
	deleted, err := s.Prune(ScheduledPrefix, "n", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"etcd-snapshot-n-100", "etcd-snapshot-n-200"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	got, _ := s.List()
	want := []string{"on-demand-n-10", "etcd-snapshot-n-extra-20", "etcd-snapshot-other-50", "etcd-snapshot-n-300", "etcd-snapshot-n-400"}
	if !slices.Equal(names(got), want) {
		t.Errorf("left %v, want %v", names(got), want)
	}
	if _, err := s.Prune(ScheduledPrefix, "n", 0); err == nil {
		t.Error("Prune with retention 0 succeeded")
	}
}

// A relative snapshot directory (--data-dir ./data) still lists as an
// absolute file:// URL, as k3s shows it.
func TestLocationIsAnAbsoluteURL(t *testing.T) {
	t.Chdir(t.TempDir())
	s := Store{Dir: filepath.Join("data", "snapshots")}
	info, err := s.Save(context.Background(), fakeSource{db: database(1)}, "on-demand-n-1700000000")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	want := "file://" + filepath.Join(wd, "data", "snapshots", "on-demand-n-1700000000")
	if got := info.Location(); got != want {
		t.Errorf("Location() = %s, want %s", got, want)
	}
}
