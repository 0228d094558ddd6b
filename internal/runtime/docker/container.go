package docker

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// CreateSandbox implements runtime.Runtime.
func (r *Runtime) CreateSandbox(ctx context.Context, spec runtime.SandboxSpec) (string, error) {
	cfg := &container.Config{
		Image:  spec.Image,
		Labels: runtime.MergeLabels(spec.Meta(), spec.Labels),
	}
	if len(spec.Command) > 0 {
		cfg.Entrypoint = spec.Command
		cfg.Cmd = []string{}
	}
	hc := &container.HostConfig{
		NetworkMode: "none",
		IpcMode:     "shareable",
		DNS:         spec.DNS.Servers,
		DNSSearch:   spec.DNS.Searches,
		DNSOptions:  spec.DNS.Options,
	}
	if spec.HostNetwork {
		hc.NetworkMode, hc.UTSMode = "host", "host"
	} else {
		if spec.Network != "" {
			hc.NetworkMode = container.NetworkMode(spec.Network)
		}
		cfg.Hostname = spec.Hostname
	}
	name := containerName("POD", spec.Pod, spec.Attempt)
	resp, err := r.c.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", wrapCreate(err, "create sandbox "+name)
	}
	return resp.ID, nil
}

// CreateContainer implements runtime.Runtime.
func (r *Runtime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	cfg := &container.Config{
		Image:      spec.Image,
		Env:        spec.Env,
		WorkingDir: spec.WorkingDir,
		Labels:     runtime.MergeLabels(spec.Meta(), spec.Labels),
		Tty:        spec.TTY,
		OpenStdin:  spec.Stdin,
		StdinOnce:  spec.StdinOnce,
	}
	if len(spec.Command) > 0 {
		cfg.Entrypoint = spec.Command
		if len(spec.Args) == 0 {
			cfg.Cmd = []string{} // a new entrypoint drops the image's cmd, as in Kubernetes
		}
	}
	if len(spec.Args) > 0 {
		cfg.Cmd = spec.Args
	}
	sec := spec.Security
	if sec.RunAsUser != nil {
		cfg.User = strconv.FormatInt(*sec.RunAsUser, 10)
		if sec.RunAsGroup != nil {
			cfg.User += ":" + strconv.FormatInt(*sec.RunAsGroup, 10)
		}
	} else if sec.RunAsGroup != nil {
		// Docker needs a user with a group; 0 is what the image would use
		// only when it sets no USER, which is the common case.
		cfg.User = "0:" + strconv.FormatInt(*sec.RunAsGroup, 10)
	}
	join := "container:" + spec.SandboxID
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(join),
		IpcMode:        container.IpcMode(join),
		UTSMode:        container.UTSMode(join),
		Privileged:     sec.Privileged,
		ReadonlyRootfs: sec.ReadOnlyRootFS,
		CapAdd:         sec.CapAdd,
		CapDrop:        sec.CapDrop,
		Resources: container.Resources{
			Memory:    spec.Resources.MemoryLimitBytes,
			CPUShares: spec.Resources.CPUShares,
			CPUQuota:  spec.Resources.CPUQuotaMicros,
			CPUPeriod: spec.Resources.CPUPeriodMicros,
		},
	}
	for _, g := range sec.SupplementalGroups {
		hc.GroupAdd = append(hc.GroupAdd, strconv.FormatInt(g, 10))
	}
	for _, m := range spec.Mounts {
		switch m.Kind {
		case runtime.MountBind:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case runtime.MountTmpfs:
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: m.Target, ReadOnly: m.ReadOnly,
				TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.SizeBytes}})
		default:
			return "", fmt.Errorf("create container %s: unknown mount kind %q", spec.Name, m.Kind)
		}
	}
	name := containerName(spec.Name, spec.Pod, spec.Attempt)
	resp, err := r.c.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", wrapCreate(err, "create container "+name)
	}
	return resp.ID, nil
}

// wrapCreate is wrap, with a name conflict reported as ErrAlreadyExists.
func wrapCreate(err error, what string) error {
	if errdefs.IsConflict(err) {
		return fmt.Errorf("%s: %w (%v)", what, runtime.ErrAlreadyExists, err)
	}
	return wrap(err, what)
}

// containerName is the Docker name, for people reading `docker ps`; the
// kubelet goes by labels only.
func containerName(name string, pod runtime.PodRef, attempt int) string {
	return fmt.Sprintf("mizzen_%s_%s_%s_%s_%d", name, pod.Name, pod.Namespace, pod.UID, attempt)
}

// StartContainer implements runtime.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	if err := r.c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return wrap(err, "start container "+id)
	}
	return nil
}

// StopContainer implements runtime.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(math.Ceil(timeout.Seconds())) // Docker counts whole seconds
	if err := r.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
		return wrap(err, "stop container "+id)
	}
	return nil
}

// RemoveContainer implements runtime.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	err := r.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return wrap(err, "remove container "+id)
	}
	return nil
}

// ListContainers implements runtime.Runtime.
func (r *Runtime) ListContainers(ctx context.Context, f runtime.ListFilter) ([]runtime.Container, error) {
	args := filters.NewArgs(filters.Arg("label", runtime.LabelNode), filters.Arg("label", runtime.LabelPodUID))
	if f.Node != "" {
		args.Add("label", runtime.LabelNode+"="+f.Node)
	}
	if f.PodUID != "" {
		args.Add("label", runtime.LabelPodUID+"="+f.PodUID)
	}
	if f.Kind != "" {
		args.Add("label", runtime.LabelKind+"="+string(f.Kind))
	}
	list, err := r.c.ContainerList(ctx, container.ListOptions{All: !f.RunningOnly, Filters: args})
	if err != nil {
		return nil, wrap(err, "list containers")
	}
	out := make([]runtime.Container, 0, len(list))
	for _, c := range list {
		meta, ok := runtime.ParseMeta(c.Labels)
		if !ok {
			continue
		}
		out = append(out, runtime.Container{
			ID: c.ID, Meta: meta, Image: c.Image, State: state(string(c.State)),
			Created: time.Unix(c.Created, 0), Labels: c.Labels,
		})
	}
	return out, nil
}

// InspectContainer implements runtime.Runtime.
func (r *Runtime) InspectContainer(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	ci, err := r.c.ContainerInspect(ctx, id)
	if err != nil {
		return runtime.ContainerStatus{}, wrap(err, "inspect container "+id)
	}
	st := runtime.ContainerStatus{ImageID: ci.Image}
	st.ID = ci.ID
	st.Created = parseTime(ci.Created)
	if ci.Config != nil {
		st.Image = ci.Config.Image
		st.Labels = ci.Config.Labels
		st.Meta, _ = runtime.ParseMeta(ci.Config.Labels)
	}
	st.State = runtime.StateUnknown
	if s := ci.State; s != nil {
		st.State = state(string(s.Status))
		st.ExitCode = s.ExitCode
		st.OOMKilled = s.OOMKilled
		st.Error = s.Error
		st.StartedAt = parseTime(s.StartedAt)
		st.FinishedAt = parseTime(s.FinishedAt)
		if !st.FinishedAt.IsZero() && st.FinishedAt.Before(st.StartedAt) {
			// Docker stamps StartedAt after the process started, so one
			// that exits at once can seem to finish before it started.
			st.FinishedAt = st.StartedAt
		}
		if s.Running {
			st.PID = s.Pid
		}
	}
	if ns := ci.NetworkSettings; ns != nil && st.State == runtime.StateRunning {
		for _, n := range ns.Networks {
			if n != nil && n.IPAddress != "" {
				st.IP = n.IPAddress
				break
			}
		}
	}
	return st, nil
}

// state maps Docker's states onto the runtime's.
func state(s string) runtime.State {
	switch s {
	case "created":
		return runtime.StateCreated
	case "running", "paused", "restarting":
		return runtime.StateRunning
	case "exited", "dead":
		return runtime.StateExited
	}
	return runtime.StateUnknown
}

// parseTime parses Docker's timestamps; Docker's zero time becomes Go's.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
