package envvar

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestMetadataField(t *testing.T) {
	pod := testPod(corev1.Container{Name: "app"})
	tests := []struct {
		path, want, wantErr string
	}{
		{path: "metadata.name", want: "web-1"},
		{path: "metadata.namespace", want: "shop"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"front\""},
		{path: "metadata.annotations", want: `note="say \"hi\""`},
		{path: "metadata.labels['tier']", want: "front"},
		{path: "metadata.labels['absent']", want: ""},
		{path: "metadata.annotations['note']", want: `say "hi"`},
		{path: "metadata.labels['bad key']", wantErr: "invalid key subscript in metadata.labels['bad key']"},
		{path: "metadata.name['x']", wantErr: `fieldPath "metadata.name['x']" does not support subscript`},
		{path: "spec.nodeName", wantErr: "unsupported fieldPath: spec.nodeName"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := MetadataField(pod, tt.path)
			if tt.wantErr != "" {
				if err == nil || len(err.Error()) < len(tt.wantErr) || err.Error()[:len(tt.wantErr)] != tt.wantErr {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestResourceValueDivisorsAndDefaults(t *testing.T) {
	pod := testPod(corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("250m"),
			corev1.ResourceMemory: resource.MustParse("100Mi"),
		},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
	}})
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "bare"})
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("3"),
		corev1.ResourceMemory:           resource.MustParse("8Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("10G"),
	}
	tests := []struct {
		name, container, res, divisor, want, wantErr string
	}{
		{name: "cpu limit rounds up to cores", container: "app", res: "limits.cpu", want: "1"},
		{name: "cpu limit in millicores", container: "app", res: "limits.cpu", divisor: "1m", want: "250"},
		{name: "cpu request in 10m units", container: "app", res: "requests.cpu", divisor: "10m", want: "10"},
		{name: "memory limit in bytes", container: "app", res: "limits.memory", want: "104857600"},
		{name: "memory limit in Mi", container: "app", res: "limits.memory", divisor: "1Mi", want: "100"},
		{name: "memory limit in Gi rounds up", container: "app", res: "limits.memory", divisor: "1Gi", want: "1"},
		{name: "memory request defaults to the limit", container: "app", res: "requests.memory", divisor: "1Mi", want: "100"},
		{name: "unset cpu limit is allocatable", container: "bare", res: "limits.cpu", want: "3"},
		{name: "unset memory limit is allocatable", container: "bare", res: "limits.memory", divisor: "1Gi", want: "8"},
		{name: "unset storage limit is allocatable", container: "bare", res: "limits.ephemeral-storage", divisor: "1G", want: "10"},
		{name: "unset request is zero", container: "bare", res: "requests.cpu", want: "0"},
		{name: "init container", container: "init", res: "limits.memory", divisor: "1Mi", want: "1024"},
		{name: "unknown container", container: "nope", res: "limits.cpu", wantErr: "container nope not found"},
		{name: "unsupported resource", container: "app", res: "limits.gpu", wantErr: "unsupported container resource : limits.gpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := &corev1.ResourceFieldSelector{ContainerName: tt.container, Resource: tt.res}
			if tt.divisor != "" {
				ref.Divisor = resource.MustParse(tt.divisor)
			}
			got, err := ResourceValue(pod, "", ref, allocatable)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
