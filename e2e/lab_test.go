package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The lab stands for a network of hosts: a bridge in the root network
// namespace (the server's host, at labGateway) and, for each agent, a
// network namespace with a veth to that bridge and an address of
// labSubnet. Traffic stays on addresses the tests create. Each test
// process has a lab of its own (bridge mzlab<N>, subnet 10.99.<N>.0/24),
// so that concurrent runs of the suite on one machine keep apart.
const labComment = "mizzen-e2e-lab"

var (
	labOnce    sync.Once
	labErr     error
	labBridge  string // mzlab<N>
	labGateway string // 10.99.<N>.1
	labSubnet  string // "10.99.<N>."
	labMu      sync.Mutex
	labHosts   = 1 // the last host number given
)

// requireLab creates this process's lab bridge (once) and lets traffic
// between lab hosts pass Docker's FORWARD policy.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
			t.Fatal("network tests need root")
		}
		t.Skip("SKIPPED LOUDLY: network namespace tests need root")
	}
	labOnce.Do(func() { labErr = createLab() })
	if labErr != nil {
		t.Fatalf("lab network: %v", labErr)
	}
}

// createLab takes the first free lab number: creating the bridge is the
// lock.
func createLab() error {
	for i := range 200 {
		n := (os.Getpid() + i) % 200
		name := fmt.Sprintf("mzlab%d", n)
		if err := run("ip", "link", "add", name, "type", "bridge"); err != nil {
			if strings.Contains(err.Error(), "File exists") {
				continue
			}
			return err
		}
		labBridge, labSubnet = name, fmt.Sprintf("10.99.%d.", n)
		labGateway = labSubnet + "1"
		for _, args := range [][]string{
			{"ip", "addr", "add", labGateway + "/24", "dev", labBridge},
			{"ip", "link", "set", labBridge, "up"},
		} {
			if err := run(args...); err != nil {
				return err
			}
		}
		// Bridged frames go through iptables (br_netfilter), where Docker
		// drops what it does not know.
		if run("iptables", "-w", "-n", "-L", "DOCKER-USER") == nil {
			return run(append([]string{"iptables", "-w", "-I"}, labAcceptRule()...)...)
		}
		return nil
	}
	return fmt.Errorf("no free lab bridge mzlab0..mzlab199")
}

func labAcceptRule() []string {
	return []string{"DOCKER-USER", "-i", labBridge, "-o", labBridge, "-m", "comment", "--comment", labComment, "-j", "ACCEPT"}
}

// labHost creates a network namespace standing for a host on the lab
// bridge and returns its name and address; it is removed when t ends.
func labHost(t *testing.T) (netns, ip string) {
	t.Helper()
	requireLab(t)
	labMu.Lock()
	labHosts++
	n := labHosts
	labMu.Unlock()
	if n > 250 {
		t.Fatal("lab: out of host addresses")
	}
	ip = labSubnet + strconv.Itoa(n)
	netns = fmt.Sprintf("%s-%d", labBridge, n)
	veth := fmt.Sprintf("%sh%d", labBridge, n)
	_ = run("ip", "netns", "del", netns)
	_ = run("ip", "link", "del", veth)
	steps := [][]string{
		{"ip", "netns", "add", netns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns},
		{"ip", "link", "set", veth, "master", labBridge, "up"},
		{"ip", "-n", netns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"ip", "-n", netns, "link", "set", "eth0", "up"},
		{"ip", "-n", netns, "link", "set", "lo", "up"},
		{"ip", "-n", netns, "route", "add", "default", "via", labGateway},
	}
	t.Cleanup(func() {
		_ = run("ip", "netns", "del", netns)
		_ = run("ip", "link", "del", veth)
	})
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatalf("lab host %s: %v", netns, err)
		}
	}
	return netns, ip
}

// labTeardown removes this process's lab bridge and its accept rule and,
// unless another test process still runs a lab, the pod network the
// servers' own agents set up in the root namespace.
func labTeardown() {
	if os.Geteuid() != 0 {
		return
	}
	if labBridge != "" {
		_ = run("ip", "link", "del", labBridge)
		_ = run(append([]string{"iptables", "-w", "-D"}, labAcceptRule()...)...)
	}
	if out, err := exec.Command("ip", "-br", "link", "show", "type", "bridge").CombinedOutput(); err != nil || strings.Contains(string(out), "mzlab") {
		return
	}
	if binary != "" {
		dir, err := os.MkdirTemp("", "mizzen-e2e-cleanup")
		if err == nil {
			if out, err := exec.Command(binary, "agent", "--cleanup", "--data-dir", dir).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "mizzen agent --cleanup: %v\n%s", err, out)
			}
			os.RemoveAll(dir)
		}
	}
}

// run runs a command, returning its output in the error.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNetns runs a command inside the network namespace netns.
func inNetns(netns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", netns}, args...)...)
}
