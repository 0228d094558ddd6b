package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// mapSources serves ConfigMaps and Secrets keyed "ns/name" and returns the
// API server's NotFound error for the others. Tests change it between
// Setup calls.
type mapSources struct {
	mu         sync.Mutex
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func (s *mapSources) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cm, ok := s.configMaps[ns+"/"+name]; ok {
		return cm.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (s *mapSources) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[ns+"/"+name]; ok {
		return sec.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func (s *mapSources) setConfigMap(ns, name string, data map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.configMaps[ns+"/"+name] = &corev1.ConfigMap{Data: data}
}

func ptr[T any](v T) *T { return &v }

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(t.Output())
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l).WithField("component", "volume")
}

func newTestManager(t *testing.T) (*Manager, *mapSources) {
	src := &mapSources{
		configMaps: map[string]*corev1.ConfigMap{
			"shop/cfg": {Data: map[string]string{"app.conf": "port=80", "mode": "fast"}, BinaryData: map[string][]byte{"blob": {0, 1, 2}}},
		},
		secrets: map[string]*corev1.Secret{
			"shop/creds": {Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")}},
		},
	}
	allocatable := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}
	dir := filepath.Join(t.TempDir(), "pods")
	t.Cleanup(func() {
		if _, err := os.Stat(dir); err == nil {
			if err := unmountUnder(dir); err != nil {
				t.Error(err)
			}
		}
	})
	return NewManager(dir, src, testLog(t), WithAllocatable(allocatable)), src
}

func podWith(vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"b": "2", "a": "1"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}},
			Volumes: vols,
		},
	}
}

func cmVolume(name, cm string, items []corev1.KeyToPath, optional *bool) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: items, Optional: optional}}}
}

type wantFile struct {
	content string
	mode    os.FileMode
}

func TestSetupProjectsFiles(t *testing.T) {
	tests := []struct {
		name    string
		vol     corev1.Volume
		plugin  string
		want    map[string]wantFile
		wantErr string
	}{
		{
			name: "configmap all keys", vol: cmVolume("cfg", "cfg", nil, nil), plugin: PluginConfigMap,
			want: map[string]wantFile{"app.conf": {"port=80", 0o644}, "mode": {"fast", 0o644}, "blob": {"\x00\x01\x02", 0o644}},
		},
		{
			name: "configmap items with modes",
			vol: corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr[int32](0o600),
				Items: []corev1.KeyToPath{{Key: "app.conf", Path: "etc/app.conf"}, {Key: "mode", Path: "mode.txt", Mode: ptr[int32](0o444)}}}}},
			plugin: PluginConfigMap,
			want:   map[string]wantFile{"etc/app.conf": {"port=80", 0o600}, "mode.txt": {"fast", 0o444}},
		},
		{
			name:    "configmap item key missing",
			vol:     cmVolume("cfg", "cfg", []corev1.KeyToPath{{Key: "nope", Path: "x"}}, nil),
			wantErr: `volume "cfg": configmap references non-existent config key: nope`,
		},
		{
			name: "optional configmap item key missing", plugin: PluginConfigMap,
			vol:  cmVolume("cfg", "cfg", []corev1.KeyToPath{{Key: "nope", Path: "x"}, {Key: "mode", Path: "m"}}, ptr(true)),
			want: map[string]wantFile{"m": {"fast", 0o644}},
		},
		{
			name:    "configmap missing",
			vol:     cmVolume("cfg", "absent", nil, nil),
			wantErr: `volume "cfg": configmap "absent" not found`,
		},
		{
			name: "optional configmap missing", plugin: PluginConfigMap,
			vol:  cmVolume("cfg", "absent", nil, ptr(true)),
			want: map[string]wantFile{},
		},
		{
			name: "secret", plugin: PluginSecret,
			vol: corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "creds", Items: []corev1.KeyToPath{{Key: "pass", Path: "password"}}}}},
			want: map[string]wantFile{"password": {"s3cret", 0o644}},
		},
		{
			name: "secret missing",
			vol: corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "absent"}}},
			wantErr: `volume "creds": secret "absent" not found`,
		},
		{
			name: "secret key missing",
			vol: corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "creds", Items: []corev1.KeyToPath{{Key: "nope", Path: "x"}}}}},
			wantErr: `volume "creds": secret references non-existent secret key: nope`,
		},
		{
			name: "downward API", plugin: PluginDownwardAPI,
			vol: corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
					{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
					{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: ptr[int32](0o400)},
					{Path: "tier", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}},
					{Path: "cpu_request", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
					{Path: "mem_limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
				}}}},
			want: map[string]wantFile{
				"name": {"web-1", 0o644}, "ns": {"shop", 0o644}, "uid": {"uid-1", 0o644},
				"labels": {"app=\"web\"\ntier=\"front\"", 0o644}, "annotations": {"a=\"1\"\nb=\"2\"", 0o400},
				"tier": {"front", 0o644}, "cpu_request": {"250", 0o644}, "mem_limit": {"4096", 0o644},
			},
		},
		{
			name: "downward API bad field",
			vol: corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "node", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}},
			wantErr: `volume "info": unsupported fieldPath: spec.nodeName`,
		},
		{
			name: "projected", plugin: PluginProjected,
			vol: corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr[int32](0o440),
				Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
						Items: []corev1.KeyToPath{{Key: "mode", Path: "cfg/mode"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"},
						Items: []corev1.KeyToPath{{Key: "user", Path: "creds/user", Mode: ptr[int32](0o400)}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
			want: map[string]wantFile{"cfg/mode": {"fast", 0o440}, "creds/user": {"admin", 0o400}, "name": {"web-1", 0o440}},
		},
		{
			name: "projected missing configmap",
			vol: corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}}}},
			wantErr: `volume "all": configmap "absent" not found`,
		},
		{
			name: "unsupported type",
			vol: corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: "data"}}},
			wantErr: `volume "data": unsupported volume type persistentVolumeClaim`,
		},
		{
			name:    "nfs",
			vol:     corev1.Volume{Name: "share", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "x", Path: "/"}}},
			wantErr: `volume "share": unsupported volume type nfs`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTestManager(t)
			pod := podWith(tt.vol)
			vols, err := m.Setup(context.Background(), pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, ok := vols[tt.vol.Name]; ok {
					t.Errorf("failed volume returned: %v", vols)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantPath := filepath.Join(m.PodDir(pod.UID), "volumes", tt.plugin, tt.vol.Name)
			if got := vols[tt.vol.Name]; got != (Volume{HostPath: wantPath, ReadOnly: true}) {
				t.Errorf("volume = %+v, want %s read-only", got, wantPath)
			}
			got := visible(t, wantPath)
			if len(got) != len(tt.want) {
				t.Errorf("files = %q, want %v", got, tt.want)
			}
			for p, w := range tt.want {
				info, err := os.Stat(filepath.Join(wantPath, p))
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				if got[p] != w.content || info.Mode().Perm() != w.mode {
					t.Errorf("%s = %q %v, want %q %v", p, got[p], info.Mode().Perm(), w.content, w.mode)
				}
			}
		})
	}
}

func TestSetupRefreshesConfigMapOnlyWhenChanged(t *testing.T) {
	m, src := newTestManager(t)
	pod := podWith(cmVolume("cfg", "cfg", nil, nil))
	setup := func() string {
		t.Helper()
		vols, err := m.Setup(context.Background(), pod)
		if err != nil {
			t.Fatal(err)
		}
		return dataTarget(t, vols["cfg"].HostPath)
	}
	dir := filepath.Join(m.PodDir(pod.UID), "volumes", PluginConfigMap, "cfg")
	first := setup()
	if again := setup(); again != first {
		t.Errorf("unchanged configmap rewritten: ..data %s → %s", first, again)
	}
	src.setConfigMap("shop", "cfg", map[string]string{"mode": "slow", "extra": "1"})
	second := setup()
	if second == first {
		t.Fatal("changed configmap not rewritten")
	}
	want := map[string]string{"mode": "slow", "extra": "1"}
	if got := visible(t, dir); !mapsEqual(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if again := setup(); again != second {
		t.Errorf("unchanged configmap rewritten: ..data %s → %s", second, again)
	}
}

func TestSetupEmptyDirAndHostPath(t *testing.T) {
	m, _ := newTestManager(t)
	host := filepath.Join(t.TempDir(), "host", "data")
	pod := podWith(
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: host, Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
	)
	vols, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(m.PodDir("uid-1"), "volumes", PluginEmptyDir, "scratch")
	if vols["scratch"] != (Volume{HostPath: scratch}) || vols["host"] != (Volume{HostPath: host}) {
		t.Errorf("volumes = %+v", vols)
	}
	for p, mode := range map[string]os.FileMode{scratch: 0o777, host: 0o755} {
		info, err := os.Stat(p)
		if err != nil || !info.IsDir() || info.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want a directory of mode %v", p, info, err, mode)
		}
	}
	if err := os.WriteFile(filepath.Join(scratch, "kept"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(scratch, "kept")); err != nil {
		t.Errorf("second Setup lost emptyDir contents: %v", err)
	}
}

func TestSetupReportsEveryFailedVolume(t *testing.T) {
	m, _ := newTestManager(t)
	pod := podWith(
		cmVolume("bad1", "absent", nil, nil),
		corev1.Volume{Name: "ok", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		cmVolume("bad2", "gone", nil, nil),
	)
	vols, err := m.Setup(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), `"absent"`) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("err = %v, want both failures", err)
	}
	if _, ok := vols["ok"]; !ok || len(vols) != 1 {
		t.Errorf("volumes = %v, want only ok", vols)
	}
}

func TestCleanupAndOrphans(t *testing.T) {
	m, _ := newTestManager(t)
	if uids, err := m.Orphans(); err != nil || len(uids) != 0 {
		t.Fatalf("Orphans before any pod = %v, %v", uids, err)
	}
	for _, uid := range []types.UID{"uid-1", "uid-2"} {
		pod := podWith(cmVolume("cfg", "cfg", nil, nil),
			corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		pod.UID = uid
		if _, err := m.Setup(context.Background(), pod); err != nil {
			t.Fatal(err)
		}
	}
	uids, err := m.Orphans()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(uids)
	if !slices.Equal(uids, []types.UID{"uid-1", "uid-2"}) {
		t.Errorf("Orphans = %v", uids)
	}
	for range 2 {
		if err := m.Cleanup("uid-1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(m.PodDir("uid-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
	if uids, _ := m.Orphans(); !slices.Equal(uids, []types.UID{"uid-2"}) {
		t.Errorf("Orphans after cleanup = %v", uids)
	}
	if err := m.Cleanup("../escape"); err == nil {
		t.Error("Cleanup accepted a uid with a path separator")
	}
}
