package kubelet

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// terminate stops a pod being deleted within its grace period, writes its
// final status and deletes the API object for good; the informer's delete
// then makes the worker remove its containers and directory.
func (k *Kubelet) terminate(ctx context.Context, pod *corev1.Pod, pc *podContainers, mem *podMemory) time.Duration {
	grace := gracePeriod(pod)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	}
	k.probes.Remove(pod.UID)
	k.stopRunning(ctx, pod, pc, grace)
	if ctx.Err() != nil {
		return 0
	}
	pc, err := k.gather(ctx, pod.UID)
	if err != nil {
		return 2 * time.Second
	}
	k.writeStatus(ctx, pod, k.computeStatus(pod, pc, mem, true), mem)
	zero := int64(0)
	err = k.cfg.Client.Delete(ctx, pod, &metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	// Gone already (a terminal pod is deleted at once by the next
	// delete, e.g. the garbage collector's): not found, another UID, or
	// forbidden because the node authorizer no longer sees it.
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && !apierrors.IsForbidden(err) {
		if ctx.Err() == nil {
			k.log.WithError(err).WithField("pod", pod.Namespace+"/"+pod.Name).Warn("delete terminated pod")
		}
		return 2 * time.Second
	}
	return 0
}

// cleanup removes every container and the directory of a pod that is no
// longer bound here.
func (k *Kubelet) cleanup(ctx context.Context, uid types.UID, pc *podContainers) error {
	k.probes.Remove(uid)
	k.stopRunning(ctx, nil, pc, 0)
	for _, c := range pc.all() {
		if err := k.rt.RemoveContainer(ctx, c.ID); err != nil {
			return err
		}
		k.inspect.forget(c.ID)
	}
	if k.cfg.Volumes != nil {
		return k.cfg.Volumes.Cleanup(uid)
	}
	return nil
}

// Sources adapts a Client to the sources of volumes and environment
// variables (ConfigMaps and Secrets, read from the API when needed).
func Sources(c Client) APISources { return APISources{c} }

// APISources reads ConfigMaps and Secrets through a Client.
type APISources struct{ c Client }

// ConfigMap returns the ConfigMap namespace/name.
func (s APISources) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	return cm, s.get(ctx, cm, namespace, name)
}

// Secret returns the Secret namespace/name.
func (s APISources) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	return sec, s.get(ctx, sec, namespace, name)
}

func (s APISources) get(ctx context.Context, obj runtime.Object, namespace, name string) error {
	return s.c.Get(ctx, obj, namespace, name)
}
