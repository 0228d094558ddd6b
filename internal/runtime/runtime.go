// Package runtime is the seam between the kubelet and the container runtime.
//
// The kubelet drives pods only through the Runtime interface: a sandbox
// container per pod holds the pod's network, IPC and UTS namespaces, and the
// app containers join it. Docker (package runtime/docker) is the real
// implementation; package runtime/fake is an in-memory one for unit tests;
// package runtime/runtimetest is the contract suite both must pass.
//
// Every container a node manages carries the labels in labels.go, so a
// restarted kubelet can rebuild its view from ListContainers alone, and
// several nodes can share one daemon, each seeing only its own containers.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Runtime runs pod sandboxes and containers and manages their images.
// Implementations are safe for concurrent use.
type Runtime interface {
	// Version reports the runtime's name and version.
	Version(ctx context.Context) (VersionInfo, error)

	// ImageStatus returns the image ref names (a tag or an ID), or
	// ErrNotFound when it is absent.
	ImageStatus(ctx context.Context, ref string) (Image, error)
	// PullImage pulls ref from its registry, reporting progress (which may
	// be nil) as it goes.
	PullImage(ctx context.Context, ref string, auth *RegistryAuth, progress func(PullProgress)) (Image, error)
	// LoadImages loads a `docker save` style archive (an airgap bundle) and
	// returns the names (or IDs, for untagged images) it loaded.
	LoadImages(ctx context.Context, archive io.Reader) ([]string, error)
	// ImportImage creates the image ref from a root filesystem tar, the way
	// `docker import` does, with cfg as its default config.
	ImportImage(ctx context.Context, rootfs io.Reader, ref string, cfg ImageConfig) (Image, error)
	// RemoveImage removes the image ref; an absent image is not an error.
	RemoveImage(ctx context.Context, ref string) error

	// CreateSandbox creates (but does not start) a pod's sandbox container.
	// It returns ErrAlreadyExists when the pod already has a sandbox of
	// that attempt (and CreateContainer likewise for a container).
	CreateSandbox(ctx context.Context, spec SandboxSpec) (string, error)
	// CreateContainer creates (but does not start) an app container that
	// joins the namespaces of the sandbox spec.SandboxID.
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	// StartContainer starts a created sandbox or app container; an app
	// container's sandbox must be running.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends SIGTERM, then SIGKILL when the container is still
	// running after timeout (Docker rounds it up to whole seconds).
	// Stopping a stopped container is not an error.
	StopContainer(ctx context.Context, id string, timeout time.Duration) error
	// RemoveContainer removes a container, killing it first if it runs.
	// Removing an absent container is not an error.
	RemoveContainer(ctx context.Context, id string) error
	// ListContainers returns the containers labelled as matching f.
	ListContainers(ctx context.Context, f ListFilter) ([]Container, error)
	// InspectContainer returns a container's current status, or ErrNotFound.
	InspectContainer(ctx context.Context, id string) (ContainerStatus, error)

	// Exec runs a command in a running container and returns its exit code.
	// It returns ErrNotRunning when the container does not run. It does not
	// wait for opts.Stdin to be drained once the command has exited.
	Exec(ctx context.Context, id string, opts ExecOptions) (int, error)
	// Logs writes a container's output to stdout and stderr (both to stdout
	// for a TTY container). With opts.Follow it returns nil when the
	// container stops, or ctx.Err() when ctx is done first.
	Logs(ctx context.Context, id string, opts LogOptions, stdout, stderr io.Writer) error
	// Attach connects to a running container's main process: its output
	// from now on, and its stdin when the container was created with
	// Stdin. It returns when the output ends (the container stops) or ctx
	// is done, and ErrNotRunning when the container does not run.
	Attach(ctx context.Context, id string, opts AttachOptions) error
	// Stats returns one sample of a running container's resource usage,
	// or ErrNotRunning.
	Stats(ctx context.Context, id string) (ContainerStats, error)
}

// Errors that implementations return (wrapped) so callers can test for
// them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrNotRunning    = errors.New("container is not running")
)

// VersionInfo names a runtime and its version.
type VersionInfo struct {
	Name       string // "docker"
	Version    string // "20.10.24"
	APIVersion string // "1.41"
}

// String gives the form a Node reports as containerRuntimeVersion.
func (v VersionInfo) String() string { return v.Name + "://" + v.Version }

// Image is an image held by the runtime.
type Image struct {
	ID   string   // "sha256:…"
	Tags []string // "repo:tag"
	Size int64    // bytes
}

// ImageConfig is the default configuration of an imported image.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // "KEY=value"
	WorkingDir string
}

// RegistryAuth are credentials for a registry (from imagePullSecrets).
type RegistryAuth struct {
	Username      string
	Password      string
	Auth          string // base64 "user:password", as in .dockerconfigjson
	ServerAddress string
	IdentityToken string
	RegistryToken string
}

// PullProgress is one progress report of a pull.
type PullProgress struct {
	Layer   string // layer ID, empty for messages about the whole image
	Status  string // "Pulling fs layer", "Downloading", "Pull complete", …
	Current int64  // bytes done, when known
	Total   int64  // bytes in all, when known
}
