package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// checkHostPath applies the hostPath volume's type: it creates the path for
// DirectoryOrCreate (mode 0755) and FileOrCreate (0644), and otherwise checks
// the path is of the type, with the kubelet's error texts.
func checkHostPath(s *corev1.HostPathVolumeSource) error {
	if s.Type == nil || *s.Type == corev1.HostPathUnset {
		return nil
	}
	p := s.Path
	info, err := os.Stat(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	is := func(m fs.FileMode) bool { return exists && info.Mode().Type() == m }
	var want string
	switch t := *s.Type; t {
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return os.MkdirAll(p, 0o755)
		}
		fallthrough
	case corev1.HostPathDirectory:
		if !is(fs.ModeDir) {
			want = "a directory"
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(p, os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		fallthrough
	case corev1.HostPathFile:
		if !is(0) {
			want = "a file"
		}
	case corev1.HostPathSocket:
		if !is(fs.ModeSocket) {
			want = "a socket file"
		}
	case corev1.HostPathCharDev:
		if !is(fs.ModeDevice | fs.ModeCharDevice) {
			want = "a character device"
		}
	case corev1.HostPathBlockDev:
		if !is(fs.ModeDevice) {
			want = "a block device"
		}
	default:
		return fmt.Errorf("%s is an invalid volume type", t)
	}
	if want != "" {
		return fmt.Errorf("hostPath type check failed: %s is not %s", p, want)
	}
	return nil
}
