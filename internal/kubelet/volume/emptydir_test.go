package volume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestTmpfsSize(t *testing.T) {
	const mi = 1 << 20
	limits := func(mem string) corev1.ResourceRequirements {
		if mem == "" {
			return corev1.ResourceRequirements{}
		}
		return corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)}}
	}
	tests := []struct {
		name        string
		allocatable string
		containers  []string // memory limits, "" for none
		init        string
		sizeLimit   string
		want        int64
	}{
		{name: "nothing known", containers: []string{""}, want: 0},
		{name: "allocatable", allocatable: "1Gi", containers: []string{""}, want: 1024 * mi},
		{name: "pod limit below allocatable", allocatable: "1Gi", containers: []string{"100Mi", "50Mi"}, want: 150 * mi},
		{name: "one container unlimited", allocatable: "1Gi", containers: []string{"100Mi", ""}, want: 1024 * mi},
		{name: "init container larger", allocatable: "1Gi", containers: []string{"100Mi"}, init: "300Mi", want: 300 * mi},
		{name: "sizeLimit smallest", allocatable: "1Gi", containers: []string{"100Mi"}, sizeLimit: "10Mi", want: 10 * mi},
		{name: "sizeLimit above pod limit", allocatable: "1Gi", containers: []string{"100Mi"}, sizeLimit: "500Mi", want: 100 * mi},
		{name: "sizeLimit without allocatable", containers: []string{""}, sizeLimit: "64Mi", want: 64 * mi},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.allocatable != "" {
				opts = append(opts, WithAllocatable(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(tt.allocatable)}))
			}
			m := NewManager(t.TempDir(), &mapSources{}, testLog(t), opts...)
			pod := podWith()
			pod.Spec.Containers = nil
			for i, l := range tt.containers {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: limits(l)})
			}
			if tt.init != "" {
				pod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: limits(tt.init)}}
			}
			s := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
			if tt.sizeLimit != "" {
				s.SizeLimit = ptr(resource.MustParse(tt.sizeLimit))
			}
			if got := m.tmpfsSize(pod, s); got != tt.want {
				t.Errorf("size = %d, want %d", got, tt.want)
			}
		})
	}
}
