package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// emptyDirMode is the mode of an emptyDir, writable by any container user,
// as the kubelet makes it.
const emptyDirMode = 0o777

// emptyDir creates the emptyDir at dir; for medium Memory it mounts a tmpfs
// there (sized by tmpfsSize) unless one is already mounted.
func (m *Manager) emptyDir(pod *corev1.Pod, dir string, s *corev1.EmptyDirVolumeSource) error {
	switch s.Medium {
	case corev1.StorageMediumDefault, corev1.StorageMediumMemory:
	default:
		return fmt.Errorf("emptyDir medium %q is not supported", s.Medium)
	}
	if err := os.MkdirAll(dir, emptyDirMode); err != nil {
		return err
	}
	if s.Medium == corev1.StorageMediumMemory {
		mounted, err := isMountPoint(dir)
		if err != nil {
			return err
		}
		if !mounted {
			if err := mountTmpfs(dir, m.tmpfsSize(pod, s)); err != nil {
				return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
			}
		}
	}
	// Chmod, as MkdirAll's and tmpfs' modes are filtered by the umask.
	return os.Chmod(dir, emptyDirMode)
}

// memoryBacked mounts a tmpfs at dir unless one is there: the kubelet backs
// secret, downwardAPI and projected volumes with memory so that secrets
// never reach the disk. Where mounting is not permitted (an agent not
// running as root) the volume stays a plain directory.
func (m *Manager) memoryBacked(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	err = mountTmpfs(dir, 0)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, errors.ErrUnsupported) {
		m.noTmpfs.Do(func() {
			m.log.WithError(err).Warn("cannot mount tmpfs: secret, downwardAPI and projected volumes are written to disk")
		})
		return nil
	}
	if err != nil {
		return err
	}
	// A fresh tmpfs is world-writable (1777).
	return os.Chmod(dir, 0o755)
}

// tmpfsSize is the size of a memory-backed emptyDir as the kubelet computes
// it: the node's allocatable memory, lowered to the pod's memory limit and
// then to the volume's sizeLimit when those are smaller. 0 (the kernel's
// default, half the RAM) when none is known.
func (m *Manager) tmpfsSize(pod *corev1.Pod, s *corev1.EmptyDirVolumeSource) int64 {
	var size int64
	if q, ok := m.allocatable[corev1.ResourceMemory]; ok {
		size = q.Value()
	}
	lower := func(v int64) {
		if v > 0 && (size == 0 || v <= size) {
			size = v
		}
	}
	lower(podMemoryLimit(pod))
	if s.SizeLimit != nil {
		lower(s.SizeLimit.Value())
	}
	return size
}

// podMemoryLimit is the memory limit of the pod's cgroup: the larger of the
// app containers' sum and the largest init container's, or 0 when an app
// container has no limit.
func podMemoryLimit(pod *corev1.Pod) int64 {
	var sum, initMax int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok || q.IsZero() {
			return 0
		}
		sum += q.Value()
	}
	for _, c := range pod.Spec.InitContainers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			initMax = max(initMax, q.Value())
		}
	}
	return max(sum, initMax)
}
