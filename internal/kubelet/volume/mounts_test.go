package volume

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

func TestMounts(t *testing.T) {
	root := t.TempDir()
	scratch := filepath.Join(root, "scratch")
	cfg := filepath.Join(root, "cfg")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{scratch, outside} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(scratch, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAtomic(cfg, files("app.conf", "port=80")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"out":      outside,
		"relout":   "../outside",
		"in":       "sub",
		"dangling": "nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(scratch, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(scratch, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	vols := map[string]Volume{"scratch": {HostPath: scratch}, "cfg": {HostPath: cfg, ReadOnly: true}}
	realCfg, _ := filepath.EvalSymlinks(cfg)
	tests := []struct {
		name    string
		mount   corev1.VolumeMount
		want    runtime.Mount
		wantErr string
		created string // a directory the subPath creates
	}{
		{name: "whole volume", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/data"},
			want: runtime.Mount{Kind: runtime.MountBind, Source: scratch, Target: "/data"}},
		{name: "read-only mount", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/data", ReadOnly: true},
			want: runtime.Mount{Kind: runtime.MountBind, Source: scratch, Target: "/data", ReadOnly: true}},
		{name: "read-only volume", mount: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/app"},
			want: runtime.Mount{Kind: runtime.MountBind, Source: cfg, Target: "/etc/app", ReadOnly: true}},
		{name: "configmap key by subPath", mount: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"},
			want: runtime.Mount{Kind: runtime.MountBind, Source: filepath.Join(realCfg, dataTarget(t, cfg), "app.conf"), Target: "/etc/app.conf", ReadOnly: true}},
		{name: "missing subPath is created", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/logs", SubPath: "logs/app"},
			want:    runtime.Mount{Kind: runtime.MountBind, Source: filepath.Join(scratch, "logs/app"), Target: "/logs"},
			created: filepath.Join(scratch, "logs/app")},
		{name: "symlink inside the volume", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/in", SubPath: "in"},
			want: runtime.Mount{Kind: runtime.MountBind, Source: filepath.Join(scratch, "sub"), Target: "/in"}},
		{name: "dot-dot", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "../outside"},
			wantErr: "unable to provision SubPath `../outside`: must not contain '..'"},
		{name: "inner dot-dot", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "sub/../../outside"},
			wantErr: "must not contain '..'"},
		{name: "absolute", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "/etc"},
			wantErr: "error SubPath `/etc` must not be an absolute path"},
		{name: "absolute symlink out", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "out"},
			wantErr: `subpath "out" not within volume path`},
		{name: "relative symlink out", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "relout/deeper"},
			wantErr: `subpath "relout/deeper" not within volume path`},
		{name: "dangling symlink", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "dangling"},
			wantErr: `resolve subPath "dangling"`},
		{name: "unknown volume", mount: corev1.VolumeMount{Name: "nope", MountPath: "/x"},
			wantErr: `cannot find volume "nope" to mount into container "app"`},
		{name: "subPathExpr", mount: corev1.VolumeMount{Name: "scratch", MountPath: "/x", SubPathExpr: "$(POD_NAME)"},
			wantErr: "subPathExpr is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{tt.mount}}
			got, err := Mounts(c, vols)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []runtime.Mount{tt.want}) {
				t.Errorf("mounts = %+v, want %+v", got, tt.want)
			}
			if tt.created != "" {
				info, err := os.Stat(tt.created)
				if err != nil || !info.IsDir() || info.Mode().Perm() != 0o777 {
					t.Errorf("created %s: %v, %v; want a directory with the volume's mode 0777", tt.created, info, err)
				}
			}
		})
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("something was created outside the volume: %v", entries)
	}
}
