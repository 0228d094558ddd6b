// Package checkconfig checks that a host can run mizzen, as
// `k3s check-config` does: the kernel and its features (nftables, bridge,
// veth, vxlan, br_netfilter, overlayfs), cgroups, IP forwarding, Docker
// and the ports mizzen listens on. It reads the machine through Host, so
// tests feed it fake /proc and /sys trees.
package checkconfig

import (
	"context"
	"fmt"
	"io"
)

// Status is the outcome of one check.
type Status int

// The outcomes: a failed check is required; a warning is not.
const (
	OK Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warning"
	}
	return "FAIL"
}

// Result is one line of the report.
type Result struct {
	// Section groups results in the report ("System", "Kernel", ...).
	Section string
	// Name is what was checked ("nf_tables", "port 6443").
	Name   string
	Status Status
	// Detail says what was found.
	Detail string
	// Fix says how to fix a failure or warning.
	Fix string
}

// Port is a port mizzen listens on and the flag that changes it.
type Port struct {
	Flag string
	Port int
}

// Config says what the host must provide.
type Config struct {
	// DockerHost is the Docker daemon's address (empty: DOCKER_HOST or
	// the default socket).
	DockerHost string
	// NetworkBackend is vxlan or host-gw; vxlan needs the vxlan driver.
	NetworkBackend string
	// Ports must be free (a zero port is skipped).
	Ports []Port
}

// Run runs every check on h.
func Run(ctx context.Context, h Host, cfg Config) []Result {
	var out []Result
	out = append(out, checkSystem(h)...)
	out = append(out, checkKernel(h, cfg)...)
	out = append(out, checkCgroups(h))
	out = append(out, checkDocker(ctx, h, cfg.DockerHost))
	for _, p := range cfg.Ports {
		if p.Port != 0 {
			out = append(out, checkPort(h, p))
		}
	}
	return out
}

// Write prints results grouped by section, each failure and warning with
// its fix, and a last line "STATUS: pass" or "STATUS: N (fail)". It
// returns the number of failed checks.
func Write(w io.Writer, results []Result) (failed int) {
	section := ""
	for _, r := range results {
		if r.Section != section {
			if section != "" {
				fmt.Fprintln(w)
			}
			section = r.Section
			fmt.Fprintf(w, "%s:\n", section)
		}
		line := fmt.Sprintf("- %s: %s", r.Name, r.Status)
		if r.Detail != "" {
			line += " (" + r.Detail + ")"
		}
		fmt.Fprintln(w, line)
		if r.Status != OK && r.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", r.Fix)
		}
		if r.Status == Fail {
			failed++
		}
	}
	fmt.Fprintln(w)
	if failed == 0 {
		fmt.Fprintln(w, "STATUS: pass")
	} else {
		fmt.Fprintf(w, "STATUS: %d (fail)\n", failed)
	}
	return failed
}
