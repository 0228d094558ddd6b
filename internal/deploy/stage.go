package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/atomicfile"
)

// SkipSuffix marks a file the controller leaves alone: with foo.yaml.skip
// present, foo.yaml is neither applied nor overwritten by a bundled
// version, and the objects it created stay (as in k3s).
const SkipSuffix = ".skip"

// Stage writes the bundled manifests into dir, replacing %{KEY}% with
// vars[KEY] in each. A bundled file overwrites an older version, except
// where the user emptied the file or marked it with SkipSuffix; a
// disabled one (named without its extension) is removed, so that its
// objects are deleted.
func Stage(dir string, bundled fs.FS, vars map[string]string, disable []string, log *logrus.Entry) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("manifests directory: %w", err)
	}
	entries, err := fs.ReadDir(bundled, ".")
	if err != nil {
		return fmt.Errorf("bundled manifests: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !Manifest(e.Name()) {
			continue
		}
		dst := filepath.Join(dir, e.Name())
		if slices.Contains(disable, BundledName(e.Name())) {
			if err := os.Remove(dst); err == nil {
				log.WithField("file", e.Name()).Info("removed disabled bundled manifest")
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove disabled manifest: %w", err)
			}
			continue
		}
		if _, err := os.Stat(dst + SkipSuffix); err == nil {
			continue
		}
		cur, err := os.ReadFile(dst)
		if err == nil && len(cur) == 0 {
			continue // emptied by the user
		}
		raw, err := fs.ReadFile(bundled, e.Name())
		if err != nil {
			return fmt.Errorf("bundled manifest %s: %w", e.Name(), err)
		}
		want := Substitute(raw, vars)
		if bytes.Equal(cur, want) {
			continue
		}
		if err := atomicfile.Write(dst, want, 0o600); err != nil {
			return fmt.Errorf("write bundled manifest: %w", err)
		}
		log.WithField("file", e.Name()).Debug("wrote bundled manifest")
	}
	return nil
}

// BundledName is the name --disable takes for a bundled file: its name
// without extension.
func BundledName(file string) string {
	return strings.TrimSuffix(path.Base(file), path.Ext(file))
}

// Substitute replaces each %{KEY}% in data with vars[KEY]; other text is
// left as it is.
func Substitute(data []byte, vars map[string]string) []byte {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		data = bytes.ReplaceAll(data, []byte("%{"+k+"}%"), []byte(vars[k]))
	}
	return data
}
