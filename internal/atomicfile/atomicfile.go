// Package atomicfile replaces files so that readers, and a machine that
// crashes meanwhile, see either the old content or the new, never a part.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// tempPattern names the temporary files Write creates beside base.
func tempPattern(base string) string { return base + ".tmp*" }

// Write replaces path with data of exactly mode (whatever the umask and an
// older file's mode): a temporary file in the same directory, fsynced,
// renamed over path, and the directory fsynced so the rename lasts too.
func Write(path string, data []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPattern(base))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// RemoveTemps removes the temporary files a Write of path interrupted by a
// crash left behind.
func RemoveTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if tmps, err := filepath.Glob(filepath.Join(dir, tempPattern(base))); err == nil {
		for _, tmp := range tmps {
			_ = os.Remove(tmp)
		}
	}
}
