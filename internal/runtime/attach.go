package runtime

import (
	"io"
	"time"
)

// AttachOptions describe a connection to a container's main process.
type AttachOptions struct {
	// Stdin, when set, is copied to the process's stdin (only for a
	// container created with Stdin); its EOF closes the process's stdin
	// only for a container created with StdinOnce.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused with TTY: a terminal has only one output
	TTY    bool
	// Resize, with TTY, delivers terminal sizes until it is closed or the
	// attachment ends.
	Resize <-chan TermSize
}

// ContainerStats is one sample of a container's resource usage.
type ContainerStats struct {
	Time                time.Time
	CPUUsageNanoSeconds uint64 // cumulative CPU time
	MemoryUsageBytes    uint64
	// MemoryWorkingSetBytes is usage less inactive file pages, the figure
	// the kubelet reports and evicts on.
	MemoryWorkingSetBytes uint64
}
