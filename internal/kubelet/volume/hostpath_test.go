package volume

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostPathTypes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "dir")
	file := filepath.Join(root, "file")
	sock := filepath.Join(root, "s.sock")
	missing := filepath.Join(root, "missing")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		name     string
		path     string
		typ      corev1.HostPathType
		wantErr  string
		wantMode os.FileMode // of a path the check creates
	}{
		{name: "unset accepts missing", path: missing, typ: corev1.HostPathUnset},
		{name: "directory", path: dir, typ: corev1.HostPathDirectory},
		{name: "directory missing", path: missing, typ: corev1.HostPathDirectory, wantErr: "hostPath type check failed: " + missing + " is not a directory"},
		{name: "directory is a file", path: file, typ: corev1.HostPathDirectory, wantErr: "hostPath type check failed: " + file + " is not a directory"},
		{name: "directory or create", path: filepath.Join(root, "new/dir"), typ: corev1.HostPathDirectoryOrCreate, wantMode: os.ModeDir | 0o755},
		{name: "directory or create on a file", path: file, typ: corev1.HostPathDirectoryOrCreate, wantErr: "hostPath type check failed: " + file + " is not a directory"},
		{name: "file", path: file, typ: corev1.HostPathFile},
		{name: "file is a directory", path: dir, typ: corev1.HostPathFile, wantErr: "hostPath type check failed: " + dir + " is not a file"},
		{name: "file or create", path: filepath.Join(root, "newfile"), typ: corev1.HostPathFileOrCreate, wantMode: 0o644},
		{name: "file or create on a directory", path: dir, typ: corev1.HostPathFileOrCreate, wantErr: "hostPath type check failed: " + dir + " is not a file"},
		{name: "socket", path: sock, typ: corev1.HostPathSocket},
		{name: "socket is a file", path: file, typ: corev1.HostPathSocket, wantErr: "hostPath type check failed: " + file + " is not a socket file"},
		{name: "char device", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "char device is a file", path: file, typ: corev1.HostPathCharDev, wantErr: "hostPath type check failed: " + file + " is not a character device"},
		{name: "block device is a char device", path: "/dev/null", typ: corev1.HostPathBlockDev, wantErr: "hostPath type check failed: /dev/null is not a block device"},
		{name: "block device missing", path: missing, typ: corev1.HostPathBlockDev, wantErr: "hostPath type check failed: " + missing + " is not a block device"},
		{name: "invalid type", path: dir, typ: "Fifo", wantErr: "Fifo is an invalid volume type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkHostPath(&corev1.HostPathVolumeSource{Path: tt.path, Type: &tt.typ})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantMode != 0 {
				info, err := os.Stat(tt.path)
				if err != nil || info.Mode() != tt.wantMode {
					t.Errorf("created %s: %v %v, want mode %v", tt.path, info.Mode(), err, tt.wantMode)
				}
			}
		})
	}
}
