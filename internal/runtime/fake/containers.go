package fake

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// container is one fake container; its fields are guarded by Runtime.mu.
type container struct {
	status   runtime.ContainerStatus
	name     string
	argv     []string
	hostname string
	network  string // the sandbox's runtime network, if any
	tty      bool
	logs     []logLine
	changed  chan struct{} // closed and replaced when logs or state change
	proc     *process      // the main process while it runs
}

type logLine struct {
	at     time.Time
	stderr bool
	text   string // with its newline
}

// notify wakes whoever waits on c.changed. Runtime.mu must be held.
func (c *container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// CreateSandbox implements runtime.Runtime.
func (r *Runtime) CreateSandbox(ctx context.Context, spec runtime.SandboxSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("CreateSandbox", spec.Pod.UID); err != nil {
		return "", err
	}
	hostname := spec.Hostname
	if spec.HostNetwork {
		hostname, _ = os.Hostname()
	}
	name := fmt.Sprintf("mizzen_POD_%s_%s_%s_%d", spec.Pod.Name, spec.Pod.Namespace, spec.Pod.UID, spec.Attempt)
	id, err := r.create(name, spec.Image, spec.Command, nil, hostname, false, runtime.MergeLabels(spec.Meta(), spec.Labels))
	if err == nil && !spec.HostNetwork {
		r.containers[id].network = spec.Network
	}
	return id, err
}

// CreateContainer implements runtime.Runtime.
func (r *Runtime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("CreateContainer", spec.Pod.UID+"/"+spec.Name); err != nil {
		return "", err
	}
	sb, ok := r.containers[spec.SandboxID]
	if !ok {
		return "", fmt.Errorf("create container %s: sandbox %s: %w", spec.Name, spec.SandboxID, runtime.ErrNotFound)
	}
	name := fmt.Sprintf("mizzen_%s_%s_%s_%s_%d", spec.Name, spec.Pod.Name, spec.Pod.Namespace, spec.Pod.UID, spec.Attempt)
	return r.create(name, spec.Image, spec.Command, spec.Args, sb.hostname, spec.TTY, runtime.MergeLabels(spec.Meta(), spec.Labels))
}

// create adds a created container. r.mu must be held.
func (r *Runtime) create(name, image string, command, args []string, hostname string, tty bool, labels map[string]string) (string, error) {
	img, err := r.image(image)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if _, dup := r.names[name]; dup {
		return "", fmt.Errorf("create %s: %w", name, runtime.ErrAlreadyExists)
	}
	r.seq++
	id := fmt.Sprintf("%064x", r.seq)
	// Kubernetes' rules: command replaces the entrypoint and drops the
	// image's cmd; args replace the cmd.
	cfg := r.configs[img.ID]
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if len(command) > 0 {
		entrypoint, cmd = command, nil
	}
	if len(args) > 0 {
		cmd = args
	}
	argv := slices.Concat(entrypoint, cmd)
	if len(argv) == 0 {
		argv = []string{"sleep", "inf"} // what a sandbox image's entrypoint does
	}
	meta, _ := runtime.ParseMeta(labels)
	c := &container{name: name, argv: argv, hostname: hostname, tty: tty, changed: make(chan struct{})}
	c.status = runtime.ContainerStatus{
		Container: runtime.Container{ID: id, Meta: meta, Image: image, State: runtime.StateCreated, Created: time.Now(), Labels: labels},
		ImageID:   img.ID,
	}
	r.containers[id] = c
	r.names[name] = id
	return id, nil
}

// get returns the container id. r.mu must be held.
func (r *Runtime) get(id string) (*container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

// StartContainer implements runtime.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("StartContainer", id); err != nil {
		return err
	}
	c, err := r.get(id)
	if err != nil {
		return err
	}
	if c.proc != nil {
		return nil
	}
	if sb, ok := r.containers[c.status.Meta.SandboxID]; c.status.Meta.Kind == runtime.KindContainer && (!ok || sb.proc == nil) {
		return fmt.Errorf("start %s: cannot join the namespaces of sandbox %s: it is not running", id, c.status.Meta.SandboxID)
	}
	r.seq++
	c.status.State = runtime.StateRunning
	c.status.StartedAt, c.status.FinishedAt = time.Now(), time.Time{}
	c.status.ExitCode = 0
	c.status.PID = 10000 + r.seq
	if c.network != "" {
		c.status.IP = fmt.Sprintf("172.17.%d.%d", r.seq/250%250, r.seq%250+2)
	}
	p := newProcess(true, c.hostname)
	c.proc = p
	c.notify()
	stdout, stderr := &logWriter{r: r, c: c}, &logWriter{r: r, c: c, stderr: !c.tty}
	go func() {
		code := p.run(c.argv, strings.NewReader(""), stdout, stderr)
		r.mu.Lock()
		defer r.mu.Unlock()
		c.proc = nil
		c.status.State = runtime.StateExited
		c.status.ExitCode = code
		c.status.FinishedAt = time.Now()
		c.status.PID = 0
		c.status.IP = ""
		close(p.done)
		c.notify()
	}()
	return nil
}

// Exit makes a running container's main process exit with code at once,
// as a crash or `docker kill` would; it returns when the container is
// Exited.
func (r *Runtime) Exit(id string, code int) error {
	r.mu.Lock()
	c, err := r.get(id)
	p := (*process)(nil)
	if err == nil {
		p = c.proc
	}
	r.mu.Unlock()
	if err != nil || p == nil {
		return err
	}
	p.signal(sigExit(code))
	<-p.done
	return nil
}

// StopContainer implements runtime.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	err := r.record("StopContainer", id)
	c, gerr := r.get(id)
	var p *process
	if gerr == nil {
		p = c.proc
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if gerr != nil || p == nil {
		return gerr
	}
	p.signal(sigTermV)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	p.signal(sigKillV)
	<-p.done
	return nil
}

// RemoveContainer implements runtime.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	r.mu.Lock()
	err := r.record("RemoveContainer", id)
	c, ok := r.containers[id]
	var p *process
	if ok {
		p = c.proc
	}
	r.mu.Unlock()
	if err != nil || !ok {
		return err
	}
	if p != nil {
		p.signal(sigKillV)
		<-p.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
	delete(r.names, c.name)
	return nil
}

// ListContainers implements runtime.Runtime.
func (r *Runtime) ListContainers(ctx context.Context, f runtime.ListFilter) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("ListContainers", f.Node); err != nil {
		return nil, err
	}
	var out []runtime.Container
	for _, c := range r.containers {
		m := c.status.Meta
		if (f.Node != "" && m.Node != f.Node) || (f.PodUID != "" && m.Pod.UID != f.PodUID) ||
			(f.Kind != "" && m.Kind != f.Kind) || (f.RunningOnly && c.status.State != runtime.StateRunning) {
			continue
		}
		ct := c.status.Container
		ct.Labels = maps.Clone(ct.Labels)
		out = append(out, ct)
	}
	slices.SortFunc(out, func(a, b runtime.Container) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// InspectContainer implements runtime.Runtime.
func (r *Runtime) InspectContainer(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("InspectContainer", id); err != nil {
		return runtime.ContainerStatus{}, err
	}
	c, err := r.get(id)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	st := c.status
	st.Labels = maps.Clone(st.Labels)
	return st, nil
}

// Exec implements runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	r.mu.Lock()
	err := r.record("Exec", id)
	c, gerr := r.get(id)
	running := gerr == nil && c.proc != nil
	var hostname string
	if gerr == nil {
		hostname = c.hostname
	}
	hook := r.ExecHook
	r.mu.Unlock()
	switch {
	case err != nil:
		return -1, err
	case gerr != nil:
		return -1, gerr
	case !running:
		return -1, fmt.Errorf("exec in %s: %w", id, runtime.ErrNotRunning)
	}
	if hook != nil {
		if code, ok := hook(id, opts); ok {
			return code, nil
		}
	}
	stdin := opts.Stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	if opts.TTY {
		stderr = stdout
	}
	p := newProcess(false, hostname)
	done := make(chan int, 1)
	go func() { done <- p.run(opts.Cmd, stdin, stdout, stderr) }()
	select {
	case code := <-done:
		return code, nil
	case <-ctx.Done():
		p.signal(sigKillV)
		<-done
		return -1, ctx.Err()
	}
}

// Logs implements runtime.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, opts runtime.LogOptions, stdout, stderr io.Writer) error {
	r.mu.Lock()
	err := r.record("Logs", id)
	c, gerr := r.get(id)
	var lines []logLine
	if gerr == nil {
		for _, l := range c.logs {
			if opts.Since.IsZero() || !l.at.Before(opts.Since) {
				lines = append(lines, l)
			}
		}
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if gerr != nil {
		return gerr
	}
	if opts.TailLines >= 0 && len(lines) > opts.TailLines {
		lines = lines[len(lines)-opts.TailLines:]
	}
	stdout, stderr = orDiscard(stdout), orDiscard(stderr)
	write := func(l logLine) {
		w := stdout
		if l.stderr {
			w = stderr
		}
		if opts.Timestamps {
			io.WriteString(w, l.at.UTC().Format(timestampFormat)+" ")
		}
		io.WriteString(w, l.text)
	}
	for _, l := range lines {
		write(l)
	}
	if !opts.Follow {
		return nil
	}
	r.mu.Lock()
	next := len(c.logs)
	for {
		for ; next < len(c.logs); next++ {
			l := c.logs[next]
			r.mu.Unlock()
			write(l)
			r.mu.Lock()
		}
		if c.proc == nil {
			r.mu.Unlock()
			return nil
		}
		ch := c.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}

// timestampFormat is Docker's: RFC 3339 with all nine digits.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logWriter appends a container's output to its log, a line at a time.
type logWriter struct {
	r      *Runtime
	c      *container
	stderr bool
	buf    []byte // the unfinished line; only the process goroutine writes
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.c.logs = append(w.c.logs, logLine{at: time.Now(), stderr: w.stderr, text: string(w.buf[:i+1])})
		w.buf = w.buf[i+1:]
	}
	w.c.notify()
	return len(b), nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
