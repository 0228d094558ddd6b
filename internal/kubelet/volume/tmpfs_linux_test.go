package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func requireRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
		t.Fatal("needs root (MIZZEN_TEST_STRICT=1)")
	}
	t.Skip("needs root to mount tmpfs")
}

func countMounts(t *testing.T, dir string) int {
	t.Helper()
	mps, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mp := range mps {
		if mp == dir {
			n++
		}
	}
	return n
}

func TestMemoryEmptyDirIsSizedTmpfsUnmountedOnCleanup(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t)
	pod := podWith(corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("4Mi"))}}})
	dir := filepath.Join(m.PodDir(pod.UID), "volumes", PluginEmptyDir, "mem")
	t.Cleanup(func() { _ = unmountUnder(m.PodDir(pod.UID)) })
	for range 2 {
		vols, err := m.Setup(context.Background(), pod)
		if err != nil {
			t.Fatal(err)
		}
		if vols["mem"].HostPath != dir {
			t.Fatalf("volume = %+v, want %s", vols["mem"], dir)
		}
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := countMounts(t, real); n != 1 {
		t.Fatalf("%d mounts at %s after two Setups, want 1", n, real)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("filesystem type %#x, want tmpfs", st.Type)
	}
	if size := int64(st.Blocks) * st.Bsize; size != 4<<20 {
		t.Errorf("tmpfs size %d, want %d", size, 4<<20)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o777 {
		t.Errorf("mode %v, %v; want 0777", info.Mode().Perm(), err)
	}
	if err := m.Cleanup(pod.UID); err != nil {
		t.Fatal(err)
	}
	if n := countMounts(t, real); n != 0 {
		t.Errorf("%d mounts left at %s", n, real)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
}

func TestSecretVolumesAreMemoryBacked(t *testing.T) {
	requireRoot(t)
	m, _ := newTestManager(t)
	pod := podWith(
		corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		cmVolume("cfg", "cfg", nil, nil),
	)
	for range 2 {
		if _, err := m.Setup(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
	}
	vols := filepath.Join(m.PodDir(pod.UID), "volumes")
	tests := []struct {
		dir   string
		tmpfs bool
	}{
		{filepath.Join(vols, PluginSecret, "creds"), true},
		{filepath.Join(vols, PluginConfigMap, "cfg"), false},
	}
	for _, tt := range tests {
		real, err := filepath.EvalSymlinks(tt.dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := countMounts(t, real); n != map[bool]int{true: 1, false: 0}[tt.tmpfs] {
			t.Errorf("%s: %d mounts, want tmpfs %v", tt.dir, n, tt.tmpfs)
		}
		if info, err := os.Stat(tt.dir); err != nil || info.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, %v; want 0755", tt.dir, info.Mode().Perm(), err)
		}
	}
	if err := m.Cleanup(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
}
