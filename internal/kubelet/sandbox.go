package kubelet

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// SandboxRepo is the repository of the sandbox image: the mizzen binary
// itself, run as `mizzen pause`, so a node needs no registry.
const SandboxRepo = "mizzen.local/sandbox"

// EnsureSandboxImage imports the binary at path (the running mizzen) as
// the sandbox image, unless an image of the same content exists, and
// returns its reference. The tag is the binary's digest, so an upgraded
// binary gets its own image.
func EnsureSandboxImage(ctx context.Context, r rt.Runtime, path string) (string, error) {
	if err := checkStatic(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sandbox image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("sandbox image: read %s: %w", path, err)
	}
	ref := SandboxRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := r.ImageStatus(ctx, ref); err == nil {
		return ref, nil
	} else if !errors.Is(err, rt.ErrNotFound) {
		return "", fmt.Errorf("sandbox image: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: "mizzen", Mode: 0o755, Size: size, Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	cfg := rt.ImageConfig{Entrypoint: []string{"/mizzen", "pause"}}
	if _, err := r.ImportImage(ctx, pr, ref, cfg); err != nil {
		pr.CloseWithError(err)
		return "", fmt.Errorf("sandbox image: import: %w", err)
	}
	return ref, nil
}

// checkStatic refuses a dynamically linked binary: the sandbox image
// holds nothing but the binary, so it must need no loader or libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("sandbox image: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("sandbox image: %s is dynamically linked; build mizzen with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// LoadImages loads every image archive (*.tar, *.tar.gz, *.tgz) in dir
// into the runtime (airgap bundles) and returns what each file loaded. A
// missing dir loads nothing.
func LoadImages(ctx context.Context, r rt.Runtime, dir string) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz")) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return out, err
		}
		refs, err := r.LoadImages(ctx, f)
		f.Close()
		if err != nil {
			return out, fmt.Errorf("load images from %s: %w", name, err)
		}
		out[name] = refs
	}
	return out, nil
}
