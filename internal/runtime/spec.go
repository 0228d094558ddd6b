package runtime

import (
	"io"
	"time"
)

// SandboxSpec describes a pod's sandbox container, which holds the pod's
// network, IPC and UTS namespaces for its app containers.
type SandboxSpec struct {
	Node    string
	Pod     PodRef
	Attempt int
	Image   string
	Command []string // overrides the image's entrypoint when set
	// Hostname is the pod's hostname; unused with HostNetwork.
	Hostname string
	// HostNetwork shares the host's network and UTS namespaces; otherwise
	// the sandbox gets a network namespace with only loopback, which the
	// network component wires up through /proc/PID/ns/net.
	HostNetwork bool
	// Network, when set (and not HostNetwork), names a runtime network the
	// sandbox joins instead of getting only loopback (Docker's "bridge").
	Network string
	DNS     DNSConfig
	Labels  map[string]string // extra labels; the Meta labels win
}

// Meta is the label metadata the sandbox is created with.
func (s SandboxSpec) Meta() Meta {
	return Meta{Node: s.Node, Kind: KindSandbox, Pod: s.Pod, Attempt: s.Attempt}
}

// DNSConfig is written to the sandbox's resolv.conf.
type DNSConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// ContainerSpec describes an app container of a pod.
type ContainerSpec struct {
	Node      string
	Pod       PodRef
	SandboxID string // the sandbox whose namespaces the container joins
	Name      string // the container's name in the pod spec
	Attempt   int
	Image     string

	Command    []string // replaces the image's entrypoint when set
	Args       []string // replaces the image's cmd when set
	Env        []string // "KEY=value"
	WorkingDir string
	Mounts     []Mount
	Resources  Resources
	Security   Security
	Stdin      bool // keep stdin open (for attach)
	StdinOnce  bool // close stdin when the first attached client ends
	TTY        bool
	Labels     map[string]string // extra labels; the Meta labels win
}

// Meta is the label metadata the container is created with.
func (s ContainerSpec) Meta() Meta {
	return Meta{Node: s.Node, Kind: KindContainer, Pod: s.Pod, SandboxID: s.SandboxID, Name: s.Name, Attempt: s.Attempt}
}

// MountKind is the kind of a Mount.
type MountKind string

// The kinds of mounts.
const (
	MountBind  MountKind = "bind"
	MountTmpfs MountKind = "tmpfs"
)

// Mount is a filesystem mounted into a container.
type Mount struct {
	Kind      MountKind
	Source    string // host path, for MountBind
	Target    string // path in the container
	ReadOnly  bool
	SizeBytes int64 // tmpfs size limit; 0 is the runtime's default
}

// Resources are a container's cgroup limits; zero means unlimited.
type Resources struct {
	MemoryLimitBytes int64
	CPUShares        int64 // relative weight, from the CPU request
	CPUQuotaMicros   int64 // per CPUPeriodMicros, from the CPU limit
	CPUPeriodMicros  int64
}

// CPUPeriodMicros is the CFS period ResourcesFor uses, as the kubelet does.
const CPUPeriodMicros = 100000

// ResourcesFor maps Kubernetes CPU request and limit (in millicores) and a
// memory limit (bytes) to cgroup settings with the kubelet's formulas.
func ResourcesFor(cpuRequestMilli, cpuLimitMilli, memoryLimitBytes int64) Resources {
	r := Resources{MemoryLimitBytes: memoryLimitBytes, CPUShares: 2}
	if s := cpuRequestMilli * 1024 / 1000; s > 2 {
		r.CPUShares = s
	}
	if cpuLimitMilli > 0 {
		r.CPUPeriodMicros = CPUPeriodMicros
		r.CPUQuotaMicros = max(cpuLimitMilli*CPUPeriodMicros/1000, 1000)
	}
	return r
}

// Security holds the securityContext settings mizzen supports.
type Security struct {
	RunAsUser          *int64
	RunAsGroup         *int64
	SupplementalGroups []int64
	Privileged         bool
	ReadOnlyRootFS     bool
	CapAdd             []string // "NET_ADMIN", without "CAP_"
	CapDrop            []string
}

// ListFilter selects managed containers; empty fields match everything.
// Only containers with mizzen's labels are ever listed.
type ListFilter struct {
	Node        string
	PodUID      string
	Kind        Kind
	RunningOnly bool
}

// State is a container's state.
type State string

// The states of a container.
const (
	StateCreated State = "created"
	StateRunning State = "running"
	StateExited  State = "exited"
	StateUnknown State = "unknown"
)

// Container is a managed container, as ListContainers reports it.
type Container struct {
	ID      string
	Meta    Meta
	Image   string
	State   State
	Created time.Time
	Labels  map[string]string // all labels, including the Meta ones
}

// ContainerStatus is what InspectContainer reports.
type ContainerStatus struct {
	Container
	ImageID    string
	ExitCode   int
	OOMKilled  bool
	Error      string // why the runtime could not start it, if it could not
	StartedAt  time.Time
	FinishedAt time.Time
	// PID is the main process's host PID while running (0 otherwise); the
	// network namespace of a sandbox is /proc/PID/ns/net.
	PID int
	// IP is the sandbox's address on its runtime Network, if any.
	IP string
}

// RestartCount is the restart count the kubelet reports: the attempt label.
func (s ContainerStatus) RestartCount() int { return s.Meta.Attempt }

// ExecOptions describe a command run in a container.
type ExecOptions struct {
	Cmd []string
	Env []string
	TTY bool // stderr goes to Stdout with a TTY
	// Resize, with TTY, delivers terminal sizes until it is closed or the
	// command ends.
	Resize <-chan TermSize
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width, Height uint
}

// LogOptions select a container's output.
type LogOptions struct {
	Follow     bool
	TailLines  int // the last n lines; negative means all
	Since      time.Time
	Timestamps bool // prefix each line with its RFC 3339 nano time and a space
}
