package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mizzen-dev/mizzen/internal/kubelet/envvar"
	"github.com/mizzen-dev/mizzen/internal/kubelet/volume"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// startEnv is what starting a container of a pod needs.
type startEnv struct {
	pod     *corev1.Pod
	sandbox *rt.ContainerStatus
	podIP   string
	vols    map[string]volume.Volume
	hosts   string // the pod's /etc/hosts file, if managed
	mem     *podMemory
}

// startContainer creates and starts the container c (its attempt-th
// instance), recording why it could not in the pod's memory.
func (k *Kubelet) startContainer(ctx context.Context, env *startEnv, c *corev1.Container, attempt int) {
	if !k.ensureImage(ctx, env, c) {
		return
	}
	spec, err := k.containerSpec(ctx, env, c, attempt)
	if err != nil {
		env.mem.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
		k.event(env.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	id, err := k.rt.CreateContainer(ctx, spec)
	if errors.Is(err, rt.ErrAlreadyExists) {
		return // made by an earlier kubelet; the next sync adopts it
	}
	if err != nil {
		env.mem.setWaiting(c.Name, "CreateContainerError", err.Error())
		k.event(env.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	k.event(env.pod, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	k.start(ctx, env, c, id)
}

// startCreated starts a container that was created but never started
// (a kubelet stopped in between).
func (k *Kubelet) startCreated(ctx context.Context, env *startEnv, c *corev1.Container, inst *rt.ContainerStatus) {
	k.start(ctx, env, c, inst.ID)
}

func (k *Kubelet) start(ctx context.Context, env *startEnv, c *corev1.Container, id string) {
	err := k.rt.StartContainer(ctx, id)
	k.inspect.forget(id)
	if err != nil {
		env.mem.setWaiting(c.Name, "RunContainerError", err.Error())
		k.event(env.pod, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return
	}
	delete(env.mem.waiting, c.Name)
	k.event(env.pod, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		hctx, cancel := context.WithTimeout(ctx, time.Duration(gracePeriod(env.pod))*time.Second)
		err := k.runHook(hctx, env.pod, c, id, env.podIP, c.Lifecycle.PostStart)
		cancel()
		if err != nil {
			k.event(env.pod, corev1.EventTypeWarning, "FailedPostStartHook", hookMessage("PostStartHook", err))
			k.event(env.pod, corev1.EventTypeNormal, "Killing", fmt.Sprintf("FailedPostStartHook: container %s", c.Name))
			_ = k.rt.StopContainer(ctx, id, time.Duration(gracePeriod(env.pod))*time.Second)
			k.inspect.forget(id)
		}
	}
}

// containerSpec builds the runtime's description of a container.
func (k *Kubelet) containerSpec(ctx context.Context, env *startEnv, c *corev1.Container, attempt int) (rt.ContainerSpec, error) {
	pod := env.pod
	info := envvar.PodInfo{NodeName: k.cfg.NodeName, HostIP: k.cfg.HostIP, PodIP: env.podIP}
	if env.podIP != "" {
		info.PodIPs = []string{env.podIP}
	}
	var services []*corev1.Service
	if k.cfg.Services != nil {
		services = k.cfg.Services()
	}
	var allocatable corev1.ResourceList
	if k.cfg.Allocatable != nil {
		allocatable = k.cfg.Allocatable()
	}
	vars, err := envvar.Env(ctx, Sources(k.cfg.Client), pod, c, info, services, allocatable)
	if err != nil {
		return rt.ContainerSpec{}, err
	}
	mounts, err := volume.Mounts(c, env.vols)
	if err != nil {
		return rt.ContainerSpec{}, err
	}
	if env.hosts != "" && !mountsAt(mounts, "/etc/hosts") {
		mounts = append(mounts, rt.Mount{Kind: rt.MountBind, Source: env.hosts, Target: "/etc/hosts"})
	}
	if path := c.TerminationMessagePath; path != "" && !mountsAt(mounts, path) {
		file := k.terminationFile(pod, c.Name, attempt)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return rt.ContainerSpec{}, err
		}
		if err := os.WriteFile(file, nil, 0o666); err != nil {
			return rt.ContainerSpec{}, err
		}
		_ = os.Chmod(file, 0o666) // writable by any user the container runs as
		mounts = append(mounts, rt.Mount{Kind: rt.MountBind, Source: file, Target: path})
	}
	return rt.ContainerSpec{
		Node: k.cfg.NodeName, Pod: podRef(pod), SandboxID: env.sandbox.ID, Name: c.Name, Attempt: attempt,
		Image:      c.Image,
		Command:    envvar.Expand(c.Command, vars),
		Args:       envvar.Expand(c.Args, vars),
		Env:        vars,
		WorkingDir: c.WorkingDir,
		Mounts:     mounts,
		Resources: rt.ResourcesFor(c.Resources.Requests.Cpu().MilliValue(), c.Resources.Limits.Cpu().MilliValue(),
			c.Resources.Limits.Memory().Value()),
		Security:  security(pod, c),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		TTY:       c.TTY,
	}, nil
}

// terminationFile is where the container's termination message is kept.
func (k *Kubelet) terminationFile(pod *corev1.Pod, name string, attempt int) string {
	return filepath.Join(k.cfg.Volumes.PodDir(pod.UID), "containers", name, strconv.Itoa(attempt))
}

func mountsAt(ms []rt.Mount, target string) bool {
	for _, m := range ms {
		if filepath.Clean(m.Target) == filepath.Clean(target) {
			return true
		}
	}
	return false
}

// security merges the pod's and the container's securityContext.
func security(pod *corev1.Pod, c *corev1.Container) rt.Security {
	var s rt.Security
	if psc := pod.Spec.SecurityContext; psc != nil {
		s.RunAsUser, s.RunAsGroup = psc.RunAsUser, psc.RunAsGroup
		s.SupplementalGroups = append(s.SupplementalGroups, psc.SupplementalGroups...)
		if psc.FSGroup != nil {
			s.SupplementalGroups = append(s.SupplementalGroups, *psc.FSGroup)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			s.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			s.RunAsGroup = sc.RunAsGroup
		}
		s.Privileged = sc.Privileged != nil && *sc.Privileged
		s.ReadOnlyRootFS = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if caps := sc.Capabilities; caps != nil {
			for _, c := range caps.Add {
				s.CapAdd = append(s.CapAdd, string(c))
			}
			for _, c := range caps.Drop {
				s.CapDrop = append(s.CapDrop, string(c))
			}
		}
	}
	return s
}

// gracePeriod is the pod's terminationGracePeriodSeconds (default 30).
func gracePeriod(pod *corev1.Pod) int64 {
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// minGrace is the least time a container gets to stop, as in the kubelet.
const minGrace = 2 * time.Second

// stopContainer runs c's preStop hook and stops the instance within
// grace seconds.
func (k *Kubelet) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, inst *rt.ContainerStatus, grace int64) {
	deadline := k.clock.Now().Add(time.Duration(grace) * time.Second)
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && pod != nil {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		// App containers share the sandbox's network: the pod's IP.
		err := k.runHook(hctx, pod, c, inst.ID, pod.Status.PodIP, c.Lifecycle.PreStop)
		cancel()
		if err != nil {
			k.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", hookMessage("PreStopHook", err))
		}
	}
	left := max(deadline.Sub(k.clock.Now()), minGrace)
	if err := k.rt.StopContainer(ctx, inst.ID, left); err != nil && ctx.Err() == nil {
		k.log.WithError(err).WithField("container", inst.ID).Warn("stop container")
	}
	k.inspect.forget(inst.ID)
}

// stopRunning stops every running container of the pod in parallel
// (with preStop hooks and Killing events when pod is known), then its
// sandboxes.
func (k *Kubelet) stopRunning(ctx context.Context, pod *corev1.Pod, pc *podContainers, grace int64) {
	var wg sync.WaitGroup
	for name, insts := range pc.byName {
		for i := range insts {
			inst := &insts[i]
			if inst.State != rt.StateRunning {
				continue
			}
			c := containerByName(pod, name)
			if pod != nil {
				k.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container "+name)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				k.stopContainer(ctx, pod, c, inst, grace)
			}()
		}
	}
	wg.Wait()
	for _, sb := range pc.sandboxes {
		if sb.State == rt.StateRunning {
			_ = k.rt.StopContainer(ctx, sb.ID, minGrace)
			k.inspect.forget(sb.ID)
		}
		// A stopped sandbox gives its address back, as the kubelet's
		// StopPodSandbox does through CNI; once is enough (a terminal
		// pod's sandbox is stopped again at every sync).
		if sb.State == rt.StateRunning || k.hasAddress(sb.ID) {
			k.teardown(ctx, sb.ID)
		}
	}
}

func containerByName(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
