package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// payloadFile is one file of a projected volume's payload.
type payloadFile struct {
	Data []byte
	Mode os.FileMode
}

const (
	dataDir    = "..data"
	dataDirTmp = "..data_tmp"
)

// writeAtomic makes dir hold exactly payload (relative path → file) the way
// the kubelet's AtomicWriter does: the files go into a new timestamped
// directory, the ..data symlink is switched to it with one rename, and each
// top-level name is a symlink through ..data, so a reader sees the old set
// or the new one, never a mix. Nothing is written when dir already holds
// payload. It reports whether it wrote.
func writeAtomic(dir string, payload map[string]payloadFile) (bool, error) {
	clean := make(map[string]payloadFile, len(payload))
	for p, f := range payload {
		if err := validatePath(p); err != nil {
			return false, err
		}
		clean[path.Clean(p)] = f
	}
	payload = clean
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if oldTS != "" {
		same, err := holds(filepath.Join(dir, oldTS), payload)
		if err != nil {
			return false, err
		}
		if same {
			return false, ensureVisible(dir, payload, nil)
		}
	}
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	// MkdirTemp makes it 0700; containers running as any user read it.
	if err := os.Chmod(tsDir, 0o755); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	if err := writeFiles(tsDir, payload); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	tmp := filepath.Join(dir, dataDirTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDir)); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	old, err := topLevel(dir, oldTS)
	if err != nil {
		return true, err
	}
	if err := ensureVisible(dir, payload, old); err != nil {
		return true, err
	}
	return true, removeStale(dir, filepath.Base(tsDir))
}

// removeStale removes the timestamped directories other than current: the
// previous one, and any an interrupted write left behind.
func removeStale(dir, current string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, "..") || n == current || n == dataDir {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// validatePath rejects payload paths that could leave the volume, with the
// AtomicWriter's texts.
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", p)
	}
	if path.IsAbs(p) {
		return fmt.Errorf("invalid path: must be relative path: %s", p)
	}
	items := strings.Split(p, "/")
	for _, it := range items {
		if it == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", p)
		}
		if len(it) > 255 {
			return fmt.Errorf("invalid path: filenames must be less than or equal to 255 characters")
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", p)
	}
	return nil
}

// holds reports whether tsDir contains exactly payload, modes included.
func holds(tsDir string, payload map[string]payloadFile) (bool, error) {
	n := 0
	err := filepath.WalkDir(tsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(tsDir, p)
		f, ok := payload[filepath.ToSlash(rel)]
		if !ok {
			return errDiffers
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.Mode.Perm() {
			return errDiffers
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, f.Data) {
			return errDiffers
		}
		return nil
	})
	if errors.Is(err, errDiffers) || errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && n == len(payload), err
}

var errDiffers = errors.New("payload differs")

func writeFiles(tsDir string, payload map[string]payloadFile) error {
	for p, f := range payload {
		full := filepath.Join(tsDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.Data, f.Mode.Perm()); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask.
		if err := os.Chmod(full, f.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// topLevel lists the first path elements in the timestamped dir ts.
func topLevel(dir, ts string) (map[string]bool, error) {
	if ts == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, ts))
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(entries))
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m, nil
}

// ensureVisible creates the top-level symlinks through ..data for payload
// and removes those of old that payload no longer has.
func ensureVisible(dir string, payload map[string]payloadFile, old map[string]bool) error {
	want := map[string]bool{}
	for p := range payload {
		first, _, _ := strings.Cut(p, "/")
		want[first] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink(filepath.Join(dataDir, name), link); err != nil {
			return err
		}
	}
	for name := range old {
		if want[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
