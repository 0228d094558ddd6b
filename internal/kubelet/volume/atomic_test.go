package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// visible reads every regular file reachable from dir through the
// user-visible names (not the .. entries), as a container would see them.
func visible(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue
		}
		root := filepath.Join(dir, e.Name())
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			t.Fatalf("visible name %s: %v", e.Name(), err)
		}
		err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(real, p)
			got[filepath.ToSlash(filepath.Join(e.Name(), rel))] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func dataTarget(t *testing.T, dir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func timestampDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") && e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			out = append(out, e.Name())
		}
	}
	return out
}

func files(kv ...string) map[string]payloadFile {
	m := map[string]payloadFile{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = payloadFile{Data: []byte(kv[i+1]), Mode: 0o644}
	}
	return m
}

func TestWriteAtomicUpdatesInSteps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	steps := []struct {
		name      string
		payload   map[string]payloadFile
		wantWrite bool
		want      map[string]string
	}{
		{"first write", files("a", "1", "b", "2", "sub/c", "3"), true, map[string]string{"a": "1", "b": "2", "sub/c": "3"}},
		{"unchanged is not rewritten", files("a", "1", "b", "2", "sub/c", "3"), false, map[string]string{"a": "1", "b": "2", "sub/c": "3"}},
		{"key changed", files("a", "1", "b", "22", "sub/c", "3"), true, map[string]string{"a": "1", "b": "22", "sub/c": "3"}},
		{"key added", files("a", "1", "b", "22", "sub/c", "3", "d", "4"), true, map[string]string{"a": "1", "b": "22", "sub/c": "3", "d": "4"}},
		{"keys removed", files("a", "1", "sub/e", "5"), true, map[string]string{"a": "1", "sub/e": "5"}},
		{"mode changed", map[string]payloadFile{"a": {Data: []byte("1"), Mode: 0o400}, "sub/e": {Data: []byte("5"), Mode: 0o644}}, true, map[string]string{"a": "1", "sub/e": "5"}},
		{"mode unchanged", map[string]payloadFile{"a": {Data: []byte("1"), Mode: 0o400}, "sub/e": {Data: []byte("5"), Mode: 0o644}}, false, map[string]string{"a": "1", "sub/e": "5"}},
		{"emptied", map[string]payloadFile{}, true, map[string]string{}},
		{"still empty", map[string]payloadFile{}, false, map[string]string{}},
	}
	prev := ""
	for _, st := range steps {
		wrote, err := writeAtomic(dir, st.payload)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if wrote != st.wantWrite {
			t.Errorf("%s: wrote = %v, want %v", st.name, wrote, st.wantWrite)
		}
		target := dataTarget(t, dir)
		if changed := target != prev; changed != st.wantWrite {
			t.Errorf("%s: ..data went from %q to %q", st.name, prev, target)
		}
		prev = target
		if got := visible(t, dir); !mapsEqual(got, st.want) {
			t.Errorf("%s: visible files = %v, want %v", st.name, got, st.want)
		}
		if ts := timestampDirs(t, dir); !slices.Equal(ts, []string{target}) {
			t.Errorf("%s: timestamped dirs = %v, want only %s", st.name, ts, target)
		}
		for p, f := range st.payload {
			info, err := os.Stat(filepath.Join(dir, p))
			if err != nil || info.Mode().Perm() != f.Mode {
				t.Errorf("%s: %s mode = %v (%v), want %v", st.name, p, info.Mode().Perm(), err, f.Mode)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed key b still has a link: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestWriteAtomicRejectsBadPaths(t *testing.T) {
	tests := []struct{ path, wantErr string }{
		{"", `invalid path: must not be empty: ""`},
		{"/etc/passwd", "invalid path: must be relative path: /etc/passwd"},
		{"../x", "invalid path: must not contain '..': ../x"},
		{"a/../../x", "invalid path: must not contain '..': a/../../x"},
		{"..data", "invalid path: must not start with '..': ..data"},
		{strings.Repeat("x", 256), "invalid path: filenames must be less than or equal to 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			dir := t.TempDir()
			_, err := writeAtomic(dir, files(tt.path, "x"))
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteAtomicRemovesLeftoversOfAnInterruptedWrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomic(dir, files("a", "1")); err != nil {
		t.Fatal(err)
	}
	// A crash after the new timestamped dir was made, before the switch.
	if err := os.Mkdir(filepath.Join(dir, "..2020_01_01_00_00_00.123"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..2020_01_01_00_00_00.123", filepath.Join(dir, dataDirTmp)); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAtomic(dir, files("a", "2")); err != nil {
		t.Fatal(err)
	}
	target := dataTarget(t, dir)
	if ts := timestampDirs(t, dir); !slices.Equal(ts, []string{target}) {
		t.Errorf("timestamped dirs = %v, want only %s", ts, target)
	}
	if _, err := os.Lstat(filepath.Join(dir, dataDirTmp)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left: %v", dataDirTmp, err)
	}
	if got := visible(t, dir); !mapsEqual(got, map[string]string{"a": "2"}) {
		t.Errorf("files = %v", got)
	}
}
