package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/kubelet/envvar"
)

// defaultMode is the file mode of projected files when the volume sets none
// (Kubernetes' ConfigMap, Secret, DownwardAPI and Projected default).
const defaultMode int32 = 0o644

// projector computes the payloads of one pod's projected volumes.
type projector struct {
	ctx         context.Context
	src         Sources
	pod         *corev1.Pod
	allocatable corev1.ResourceList
}

func modeOr(m *int32, def int32) int32 {
	if m != nil {
		return *m
	}
	return def
}

func isTrue(b *bool) bool { return b != nil && *b }

// configMap returns the ConfigMap name, an empty one when it is missing and
// optional, or the kubelet's `configmap "name" not found`.
func (p *projector) configMap(name string, optional *bool) (*corev1.ConfigMap, error) {
	cm, err := p.src.ConfigMap(p.ctx, p.pod.Namespace, name)
	switch {
	case apierrors.IsNotFound(err) && isTrue(optional):
		return &corev1.ConfigMap{}, nil
	case apierrors.IsNotFound(err):
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
	case err != nil:
		return nil, fmt.Errorf("get configmap %s/%s: %w", p.pod.Namespace, name, err)
	}
	return cm, nil
}

// secret is configMap for Secrets.
func (p *projector) secret(name string, optional *bool) (*corev1.Secret, error) {
	s, err := p.src.Secret(p.ctx, p.pod.Namespace, name)
	switch {
	case apierrors.IsNotFound(err) && isTrue(optional):
		return &corev1.Secret{}, nil
	case apierrors.IsNotFound(err):
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
	case err != nil:
		return nil, fmt.Errorf("get secret %s/%s: %w", p.pod.Namespace, name, err)
	}
	return s, nil
}

// keysPayload projects data: every key when items is empty, else the
// items' keys to their paths. A missing item key is an error unless
// optional; what names the error ("configmap references non-existent config
// key: k").
func keysPayload(items []corev1.KeyToPath, data map[string][]byte, mode int32, optional bool, what string) (map[string]payloadFile, error) {
	out := make(map[string]payloadFile, len(data))
	if len(items) == 0 {
		for k, v := range data {
			out[k] = payloadFile{Data: v, Mode: os.FileMode(mode)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s: %s", what, it.Key)
		}
		out[it.Path] = payloadFile{Data: v, Mode: os.FileMode(modeOr(it.Mode, mode))}
	}
	return out, nil
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}

func (p *projector) configMapPayload(name string, items []corev1.KeyToPath, optional *bool, mode int32) (map[string]payloadFile, error) {
	cm, err := p.configMap(name, optional)
	if err != nil {
		return nil, err
	}
	return keysPayload(items, configMapData(cm), mode, isTrue(optional), "configmap references non-existent config key")
}

func (p *projector) secretPayload(name string, items []corev1.KeyToPath, optional *bool, mode int32) (map[string]payloadFile, error) {
	s, err := p.secret(name, optional)
	if err != nil {
		return nil, err
	}
	return keysPayload(items, s.Data, mode, isTrue(optional), "secret references non-existent secret key")
}

func (p *projector) configMapVolume(s *corev1.ConfigMapVolumeSource) (map[string]payloadFile, error) {
	return p.configMapPayload(s.Name, s.Items, s.Optional, modeOr(s.DefaultMode, defaultMode))
}

func (p *projector) secretVolume(s *corev1.SecretVolumeSource) (map[string]payloadFile, error) {
	return p.secretPayload(s.SecretName, s.Items, s.Optional, modeOr(s.DefaultMode, defaultMode))
}

func (p *projector) downwardAPIVolume(s *corev1.DownwardAPIVolumeSource) (map[string]payloadFile, error) {
	return p.downwardAPIPayload(s.Items, modeOr(s.DefaultMode, defaultMode))
}

// downwardAPIPayload writes each item's fieldRef (pod metadata) or
// resourceFieldRef (a container's resources, unset limits reading as the
// node's allocatable) to its path.
func (p *projector) downwardAPIPayload(items []corev1.DownwardAPIVolumeFile, mode int32) (map[string]payloadFile, error) {
	out := make(map[string]payloadFile, len(items))
	var errs []error
	for _, it := range items {
		var (
			v   string
			err error
		)
		switch {
		case it.FieldRef != nil:
			v, err = envvar.MetadataField(p.pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = envvar.ResourceValue(p.pod, "", it.ResourceFieldRef, p.allocatable)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[path.Clean(it.Path)] = payloadFile{Data: []byte(v), Mode: os.FileMode(modeOr(it.Mode, mode))}
	}
	return out, errors.Join(errs...)
}

// projectedVolume merges its sources' payloads. A serviceAccountToken
// source projects nothing: mizzen does not issue bound tokens yet.
func (p *projector) projectedVolume(s *corev1.ProjectedVolumeSource) (map[string]payloadFile, error) {
	mode := modeOr(s.DefaultMode, defaultMode)
	out := map[string]payloadFile{}
	var errs []error
	for _, src := range s.Sources {
		var (
			part map[string]payloadFile
			err  error
		)
		switch {
		case src.ConfigMap != nil:
			part, err = p.configMapPayload(src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode)
		case src.Secret != nil:
			part, err = p.secretPayload(src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode)
		case src.DownwardAPI != nil:
			part, err = p.downwardAPIPayload(src.DownwardAPI.Items, mode)
		case src.ServiceAccountToken != nil:
			continue
		default:
			err = errors.New("unsupported projected volume source")
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k, v := range part {
			out[k] = v
		}
	}
	return out, errors.Join(errs...)
}
