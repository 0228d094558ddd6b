package network

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// handleAt returns a netlink handle whose sockets live in the network
// namespace at path ("" is the process's own). The caller closes it.
func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", path, err)
	}
	return h, nil
}

// inNS runs f on an OS thread switched into the network namespace at path
// ("" runs f as is). Files under /proc/sys/net and child processes started
// by f see that namespace.
func inNS(path string, f func() error) error {
	if path == "" {
		return f()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A fresh goroutine, so that a thread which cannot be switched back is
	// thrown away (by returning while still locked) instead of reused.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", path, err))
			return // the thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dump retries a netlink dump interrupted by a concurrent change, so the
// result is consistent.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range 5 {
		out, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

// isNotFound reports whether err says a link does not exist.
func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf)
}

// notHostNS fails when ns is the host's network namespace (the one at
// hostPath, or the process's own): a sandbox path that leads there (a
// reused PID, a host-network sandbox) must not have its eth0 replaced.
func notHostNS(hostPath string, ns netns.NsHandle) error {
	if hostPath == "" {
		hostPath = "/proc/self/ns/net"
	}
	host, err := netns.GetFromPath(hostPath)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", hostPath, err)
	}
	defer host.Close()
	if ns.Equal(host) {
		return errors.New("it is the host's network namespace, not a sandbox's")
	}
	return nil
}
