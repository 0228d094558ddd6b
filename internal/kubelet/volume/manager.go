// Package volume sets up a pod's volumes on the host for the kubelet:
// emptyDir (a directory, or a tmpfs for medium Memory), hostPath, and the
// configMap, secret, downwardAPI and projected volumes, which it writes and
// refreshes atomically the way the kubelet's AtomicWriter does (the last
// three on a tmpfs, so secrets stay off the disk). Volumes live under
// <Dir>/<podUID>/volumes/<plugin>/<volumeName>, with the kubelet's plugin
// directory names. Mounts turns a container's volumeMounts into runtime
// mounts, and EtcHosts writes the pod's managed /etc/hosts.
package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The plugin directories of the supported volume types.
const (
	PluginEmptyDir    = "kubernetes.io~empty-dir"
	PluginConfigMap   = "kubernetes.io~configmap"
	PluginSecret      = "kubernetes.io~secret"
	PluginDownwardAPI = "kubernetes.io~downward-api"
	PluginProjected   = "kubernetes.io~projected"
)

// DefaultClusterDomain is the cluster domain EtcHosts uses unless
// WithClusterDomain says otherwise.
const DefaultClusterDomain = "cluster.local"

// Sources are where the kubelet reads referenced objects (the API client in
// the agent; a map in tests). A missing object returns an error for which
// apierrors.IsNotFound is true.
type Sources interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// Volume is a pod volume set up on the host.
type Volume struct {
	HostPath string
	// ReadOnly is true for the configMap, secret, downwardAPI and projected
	// volumes, which containers may only read.
	ReadOnly bool
}

// Manager sets up and removes the volumes of the pods of one node. It is
// safe for concurrent use on different pods; calls for one pod must not
// overlap (the kubelet's per-pod worker makes them).
type Manager struct {
	dir         string
	src         Sources
	log         *logrus.Entry
	domain      string
	allocatable corev1.ResourceList
	hostsFile   string    // the host's hosts file, for host-network pods
	noTmpfs     sync.Once // warns once that secrets go to disk
}

// Option configures a Manager.
type Option func(*Manager)

// WithClusterDomain sets the cluster domain of the pod FQDNs EtcHosts
// writes (default DefaultClusterDomain).
func WithClusterDomain(domain string) Option { return func(m *Manager) { m.domain = domain } }

// WithAllocatable sets the node's allocatable resources, which downward API
// resourceFieldRefs report for limits a container does not set, and which
// bound the size of memory-backed emptyDirs.
func WithAllocatable(rl corev1.ResourceList) Option {
	return func(m *Manager) { m.allocatable = rl }
}

// NewManager returns a Manager of the pod directories under dir
// (DATA/agent/pods) that reads ConfigMaps and Secrets from src.
func NewManager(dir string, src Sources, log *logrus.Entry, opts ...Option) *Manager {
	m := &Manager{dir: dir, src: src, log: log, domain: DefaultClusterDomain, hostsFile: "/etc/hosts"}
	for _, o := range opts {
		o(m)
	}
	return m
}

// PodDir is the directory of the pod uid: <Dir>/<uid>.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.dir, string(uid))
}

// Setup creates or refreshes every volume of pod and returns, by volume
// name, where each lives on the host. It is idempotent and rewrites nothing
// that has not changed, so the kubelet calls it on every sync to pick up
// ConfigMap and Secret changes. On errors it sets up the other volumes and
// returns them with the errors joined.
func (m *Manager) Setup(ctx context.Context, pod *corev1.Pod) (map[string]Volume, error) {
	if err := checkName(string(pod.UID)); err != nil {
		return nil, fmt.Errorf("pod uid: %w", err)
	}
	vols := make(map[string]Volume, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		vol, err := m.setup(ctx, pod, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
			continue
		}
		vols[v.Name] = vol
	}
	return vols, errors.Join(errs...)
}

func (m *Manager) setup(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (Volume, error) {
	if err := checkName(v.Name); err != nil {
		return Volume{}, err
	}
	path := func(plugin string) string {
		return filepath.Join(m.PodDir(pod.UID), "volumes", plugin, v.Name)
	}
	switch s := v.VolumeSource; {
	case s.EmptyDir != nil:
		p := path(PluginEmptyDir)
		return Volume{HostPath: p}, m.emptyDir(pod, p, s.EmptyDir)
	case s.HostPath != nil:
		return Volume{HostPath: s.HostPath.Path}, checkHostPath(s.HostPath)
	}
	var (
		plugin  string
		payload map[string]payloadFile
		err     error
	)
	p := projector{ctx: ctx, src: m.src, pod: pod, allocatable: m.allocatable}
	switch s := v.VolumeSource; {
	case s.ConfigMap != nil:
		plugin = PluginConfigMap
		payload, err = p.configMapVolume(s.ConfigMap)
	case s.Secret != nil:
		plugin = PluginSecret
		payload, err = p.secretVolume(s.Secret)
	case s.DownwardAPI != nil:
		plugin = PluginDownwardAPI
		payload, err = p.downwardAPIVolume(s.DownwardAPI)
	case s.Projected != nil:
		plugin = PluginProjected
		payload, err = p.projectedVolume(s.Projected)
	default:
		return Volume{}, fmt.Errorf("unsupported volume type %s", volumeType(s))
	}
	if err != nil {
		return Volume{}, err
	}
	dir := path(plugin)
	if plugin != PluginConfigMap {
		if err := m.memoryBacked(dir); err != nil {
			return Volume{}, fmt.Errorf("mount tmpfs at %s: %w", dir, err)
		}
	}
	wrote, err := writeAtomic(dir, payload)
	if err != nil {
		return Volume{}, fmt.Errorf("write %s: %w", dir, err)
	}
	if wrote {
		m.log.WithFields(logrus.Fields{"pod": pod.Namespace + "/" + pod.Name, "volume": v.Name}).Debug("volume contents updated")
	}
	return Volume{HostPath: dir, ReadOnly: true}, nil
}

// volumeType names the set field of s by its JSON name
// ("persistentVolumeClaim"), or "(none)".
func volumeType(s corev1.VolumeSource) string {
	rv := reflect.ValueOf(s)
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "(none)"
}

// checkName rejects a pod UID or volume name that is not one path element.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`) {
		return fmt.Errorf("invalid name %q", s)
	}
	return nil
}

// Cleanup unmounts the pod's tmpfs volumes (and anything else mounted in
// its directory) and removes the directory entirely. Removing an absent
// pod is not an error.
func (m *Manager) Cleanup(uid types.UID) error {
	if err := checkName(string(uid)); err != nil {
		return fmt.Errorf("pod uid: %w", err)
	}
	dir := m.PodDir(uid)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("clean up pod %s: %w", uid, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clean up pod %s: %w", uid, err)
	}
	return nil
}

// Orphans lists the pod UIDs that have a directory under Dir, so that the
// kubelet can clean up those it no longer runs (pods deleted while it was
// down).
func (m *Manager) Orphans() ([]types.UID, error) {
	entries, err := os.ReadDir(m.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod directories: %w", err)
	}
	var uids []types.UID
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, types.UID(e.Name()))
		}
	}
	return uids, nil
}
