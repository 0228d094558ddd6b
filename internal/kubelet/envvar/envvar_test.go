package envvar

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func testPod(c corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: corev1.PodSpec{NodeName: "spec-node", ServiceAccountName: "sa", Containers: []corev1.Container{c}},
	}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func cmKey(name, cm, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: key, Optional: &optional}}}
}

func secretKey(name, s, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: s}, Key: key, Optional: &optional}}}
}

func testSources() mapSources {
	return mapSources{
		configMaps: map[string]*corev1.ConfigMap{
			"shop/cfg": {Data: map[string]string{"mode": "fast", "level": "3", "bad=key": "x", "1ok": "y"}},
		},
		secrets: map[string]*corev1.Secret{
			"shop/creds": {Data: map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cr=t")}},
		},
	}
}

func TestEnv(t *testing.T) {
	info := PodInfo{NodeName: "node-a", HostIP: "10.0.0.1", PodIP: "10.42.0.5", PodIPs: []string{"10.42.0.5", "fd00::5"}}
	tests := []struct {
		name    string
		c       corev1.Container
		want    []string
		wantErr string
	}{
		{
			name: "literal values expand earlier variables",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				{Name: "A", Value: "a"},
				{Name: "B", Value: "$(A)-b"},
				{Name: "C", Value: "$$(A) $(MISSING) $(LATER)"},
				{Name: "LATER", Value: "l"},
				{Name: "EMPTY"},
			}},
			want: []string{"A=a", "B=a-b", "C=$(A) $(MISSING) $(LATER)", "LATER=l", "EMPTY="},
		},
		{
			name: "field refs",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				fieldEnv("NAME", "metadata.name"),
				fieldEnv("NS", "metadata.namespace"),
				fieldEnv("UID", "metadata.uid"),
				fieldEnv("APP", "metadata.labels['app']"),
				fieldEnv("NOTE", "metadata.annotations['note']"),
				fieldEnv("NODE", "spec.nodeName"),
				fieldEnv("SA", "spec.serviceAccountName"),
				fieldEnv("HOST", "status.hostIP"),
				fieldEnv("HOSTS", "status.hostIPs"),
				fieldEnv("IP", "status.podIP"),
				fieldEnv("IPS", "status.podIPs"),
			}},
			want: []string{"NAME=web-1", "NS=shop", "UID=uid-1", "APP=web", `NOTE=say "hi"`, "NODE=node-a",
				"SA=sa", "HOST=10.0.0.1", "HOSTS=10.0.0.1", "IP=10.42.0.5", "IPS=10.42.0.5,fd00::5"},
		},
		{
			name:    "unsupported field",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{fieldEnv("X", "spec.schedulerName")}},
			wantErr: "unsupported fieldPath: spec.schedulerName",
		},
		{
			name: "configmap and secret keys",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				cmKey("MODE", "cfg", "mode", false),
				secretKey("PASS", "creds", "pass", false),
				cmKey("OPT_KEY", "cfg", "nope", true),
				cmKey("OPT_CM", "absent", "k", true),
				secretKey("OPT_SECRET", "absent", "k", true),
			}},
			want: []string{"MODE=fast", "PASS=s3cr=t"},
		},
		{
			name:    "missing configmap key",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{cmKey("X", "cfg", "nope", false)}},
			wantErr: "couldn't find key nope in ConfigMap shop/cfg",
		},
		{
			name:    "missing secret key",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{secretKey("X", "creds", "nope", false)}},
			wantErr: "couldn't find key nope in Secret shop/creds",
		},
		{
			name:    "missing configmap",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{cmKey("X", "absent", "k", false)}},
			wantErr: `configmap "absent" not found`,
		},
		{
			name:    "missing secret",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{secretKey("X", "absent", "k", false)}},
			wantErr: `secret "absent" not found`,
		},
		{
			name: "envFrom with prefix, then env overriding it",
			c: corev1.Container{Name: "app",
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
					{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
				},
				Env: []corev1.EnvVar{{Name: "level", Value: "$(level)0"}},
			},
			want: []string{"1ok=y", "mode=fast", "DB_pass=s3cr=t", "DB_user=admin", "level=30"},
		},
		{
			name: "missing envFrom configmap",
			c: corev1.Container{Name: "app", EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}},
			wantErr: `configmap "absent" not found`,
		},
		{
			name: "resource fields",
			c: corev1.Container{Name: "app",
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")},
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				Env: []corev1.EnvVar{
					{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
					{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.memory", Divisor: resource.MustParse("1Mi")}}},
				},
			},
			want: []string{"CPU=2", "MEM=2048", "REQ=64"},
		},
	}
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("2Gi")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod(tt.c)
			got, err := Env(context.Background(), testSources(), pod, &pod.Spec.Containers[0], info, nil, allocatable)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("env =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestEnvMissingObjectIsNotFound(t *testing.T) {
	c := corev1.Container{Name: "app", Env: []corev1.EnvVar{cmKey("X", "absent", "k", false)}}
	pod := testPod(c)
	_, err := Env(context.Background(), testSources(), pod, &pod.Spec.Containers[0], PodInfo{}, nil, nil)
	if !apierrors.IsNotFound(err) {
		t.Errorf("err = %v, want a NotFound error", err)
	}
}

func TestEnvReportsInvalidEnvFromKeys(t *testing.T) {
	c := corev1.Container{Name: "app", EnvFrom: []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}}
	pod := testPod(c)
	var reasons, messages []string
	info := PodInfo{Warn: func(reason, message string) {
		reasons = append(reasons, reason)
		messages = append(messages, message)
	}}
	got, err := Env(context.Background(), testSources(), pod, &pod.Spec.Containers[0], info, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range got {
		if strings.HasPrefix(kv, "bad") {
			t.Errorf("invalid key not skipped: %q", kv)
		}
	}
	want := "Keys [bad=key] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid environment variable names."
	if !slices.Equal(reasons, []string{"InvalidEnvironmentVariableNames"}) || !slices.Equal(messages, []string{want}) {
		t.Errorf("warnings = %q %q, want %q", reasons, messages, want)
	}
}
