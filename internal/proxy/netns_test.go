package proxy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// testNetns creates a fresh, named network namespace for the test (removed
// at cleanup) with loopback up, and returns its name and an open handle.
// It skips loudly when not root, and fails instead under MIZZEN_TEST_STRICT=1.
func testNetns(t testing.TB) (string, netns.NsHandle) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatal("this test needs root (network namespaces, nftables) and MIZZEN_TEST_STRICT=1 is set")
		}
		t.Skip("SKIPPED: needs root for a network namespace and nftables; run as root to exercise the real kernel")
	}
	name := fmt.Sprintf("mzt-proxy-%d-%d", os.Getpid(), rand.IntN(1<<30))
	// `ip netns add` keeps /run/netns a shared mount, as every other user of
	// named namespaces expects.
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("create network namespace %s: %v\n%s", name, err, out)
	}
	h, err := netns.GetFromName(name)
	t.Cleanup(func() {
		h.Close()
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v\n%s", name, err, out)
		}
	})
	if err != nil {
		t.Fatalf("open network namespace %s: %v", name, err)
	}
	nsExec(t, name, "ip", "link", "set", "lo", "up")
	return name, h
}

// nsExec runs a command inside the named namespace and returns its output.
func nsExec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// inNetns runs fn on an OS thread switched into ns; sockets fn opens stay
// in ns after it returns.
func inNetns(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			done <- err // leave the thread locked: it exits with this goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("run in network namespace: %v", err)
	}
}
