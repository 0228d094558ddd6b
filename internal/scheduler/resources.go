package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// Requests that containers without one count as, when scoring (as
// kube-scheduler's non-zero requests), so that pods without requests
// still spread.
const (
	defaultMilliCPURequest int64 = 100
	defaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// resources is an amount of the resources the scheduler accounts for.
type resources struct {
	milliCPU, memory, ephemeral int64
}

func (r *resources) add(o resources) {
	r.milliCPU += o.milliCPU
	r.memory += o.memory
	r.ephemeral += o.ephemeral
}

func (r *resources) max(o resources) {
	r.milliCPU = max(r.milliCPU, o.milliCPU)
	r.memory = max(r.memory, o.memory)
	r.ephemeral = max(r.ephemeral, o.ephemeral)
}

// listResources reads cpu, memory and ephemeral-storage from a list.
func listResources(l corev1.ResourceList) resources {
	var r resources
	if q, ok := l[corev1.ResourceCPU]; ok {
		r.milliCPU = q.MilliValue()
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		r.memory = q.Value()
	}
	if q, ok := l[corev1.ResourceEphemeralStorage]; ok {
		r.ephemeral = q.Value()
	}
	return r
}

// containerRequests is what a container requests; a resource with a limit
// but no request requests its limit, as API defaulting makes it. With
// nonZero, cpu and memory get the scoring defaults when unset.
func containerRequests(c *corev1.Container, nonZero bool) resources {
	req := c.Resources.Requests
	get := func(name corev1.ResourceName) (q int64, ok bool) {
		v, ok := req[name]
		if !ok {
			v, ok = c.Resources.Limits[name]
		}
		if !ok {
			return 0, false
		}
		if name == corev1.ResourceCPU {
			return v.MilliValue(), true
		}
		return v.Value(), true
	}
	var r resources
	var ok bool
	if r.milliCPU, ok = get(corev1.ResourceCPU); !ok && nonZero {
		r.milliCPU = defaultMilliCPURequest
	}
	if r.memory, ok = get(corev1.ResourceMemory); !ok && nonZero {
		r.memory = defaultMemoryRequest
	}
	r.ephemeral, _ = get(corev1.ResourceEphemeralStorage)
	return r
}

// podRequests is what a pod requests, as Kubernetes counts it: the sum of
// its containers and sidecars, or the largest init step if larger, plus
// the pod overhead.
func podRequests(pod *corev1.Pod, nonZero bool) resources {
	var sum resources
	for i := range pod.Spec.Containers {
		sum.add(containerRequests(&pod.Spec.Containers[i], nonZero))
	}
	var sidecars, initMax resources
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := containerRequests(c, nonZero)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum.add(r)
			sidecars.add(r)
			initMax.max(sidecars)
			continue
		}
		step := sidecars
		step.add(r)
		initMax.max(step)
	}
	sum.max(initMax)
	sum.add(listResources(pod.Spec.Overhead))
	return sum
}
