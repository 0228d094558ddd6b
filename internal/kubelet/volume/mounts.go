package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Mounts returns the runtime mounts of container c's volumeMounts, with
// vols as Setup returned them. A mount is read-only when the volumeMount or
// the volume is. A subPath must stay inside its volume: absolute paths,
// ".." and symlinks leading out are rejected; a missing subPath is created
// as a directory with the volume's mode, as the kubelet does. subPathExpr
// is not supported.
func Mounts(c *corev1.Container, vols map[string]Volume) ([]runtime.Mount, error) {
	out := make([]runtime.Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		if vm.SubPathExpr != "" {
			return nil, fmt.Errorf("volumeMount %q of container %q: subPathExpr is not supported", vm.Name, c.Name)
		}
		src := v.HostPath
		if vm.SubPath != "" {
			var err error
			if src, err = subPath(v.HostPath, vm.SubPath); err != nil {
				return nil, fmt.Errorf("volumeMount %q of container %q: %w", vm.Name, c.Name, err)
			}
		}
		out = append(out, runtime.Mount{
			Kind:     runtime.MountBind,
			Source:   src,
			Target:   vm.MountPath,
			ReadOnly: vm.ReadOnly || v.ReadOnly,
		})
	}
	return out, nil
}

// subPath resolves sub inside the volume at base, creating missing
// directories, and returns the resolved host path.
func subPath(base, sub string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	elems := strings.Split(filepath.Clean(sub), string(filepath.Separator))
	for _, e := range strings.Split(sub, string(filepath.Separator)) {
		if e == ".." {
			return "", fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
		}
	}
	root, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(root)
	if err != nil {
		return "", err
	}
	perm := info.Mode().Perm()
	cur := root
	for _, e := range elems {
		if e == "." || e == "" {
			continue
		}
		next := filepath.Join(cur, e)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, perm); err != nil {
				return "", fmt.Errorf("create subPath directory: %w", err)
			}
			if err := os.Chmod(next, perm); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			if next, err = filepath.EvalSymlinks(next); err != nil {
				return "", fmt.Errorf("resolve subPath %q: %w", sub, err)
			}
		}
		if !within(root, next) {
			return "", fmt.Errorf("subpath %q not within volume path %q", sub, base)
		}
		cur = next
	}
	return cur, nil
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
