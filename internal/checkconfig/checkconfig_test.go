package checkconfig

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeHost is a Host made of a file tree and canned probe answers.
type fakeHost struct {
	files     map[string]string
	euid      int
	busy      map[int]bool
	docker    DockerVersion
	dockerErr error
	nftErr    error
}

func (f *fakeHost) ReadFile(name string) ([]byte, error) {
	if s, ok := f.files[name]; ok {
		return []byte(s), nil
	}
	return nil, errors.New("open " + name + ": no such file or directory")
}

func (f *fakeHost) Exists(name string) bool {
	for p := range f.files {
		if p == name || strings.HasPrefix(p, name+"/") {
			return true
		}
	}
	return false
}

func (f *fakeHost) EUID() int { return f.euid }

func (f *fakeHost) PortFree(port int) error {
	if f.busy[port] {
		return errors.New("bind: address already in use")
	}
	return nil
}

func (f *fakeHost) Docker(context.Context, string) (DockerVersion, error) {
	return f.docker, f.dockerErr
}

func (f *fakeHost) NFTables() error { return f.nftErr }

const goodConfig = `# Linux/x86 6.1.0 Kernel Configuration
CONFIG_NF_TABLES=m
CONFIG_NF_CONNTRACK=m
CONFIG_NF_NAT=m
CONFIG_NFT_CT=m
CONFIG_NFT_NAT=m
CONFIG_NFT_MASQ=m
CONFIG_NFT_NUMGEN=m
CONFIG_NFT_FIB_IPV4=m
CONFIG_NFT_REJECT_IPV4=m
CONFIG_BRIDGE=m
CONFIG_VETH=m
CONFIG_BRIDGE_NETFILTER=m
CONFIG_VXLAN=m
CONFIG_OVERLAY_FS=m
`

// goodHost is a Debian-like machine with everything mizzen needs.
func goodHost() *fakeHost {
	return &fakeHost{
		files: map[string]string{
			"/proc/sys/kernel/osrelease":        "6.1.0-18-amd64\n",
			"/proc/sys/net/ipv4/ip_forward":     "1\n",
			"/boot/config-6.1.0-18-amd64":       goodConfig,
			"/proc/modules":                     "nf_tables 315392 0 - Live 0x0000000000000000\nbridge 311296 1 br_netfilter, Live 0x0\n",
			"/proc/mounts":                      "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n",
			"/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
			"/proc/filesystems":                 "nodev\tsysfs\nnodev\toverlay\n",
		},
		docker: DockerVersion{Version: "20.10.24", APIVersion: "1.41"},
	}
}

var allPorts = []Port{{"https-listen-port", 6443}, {"kubelet-port", 10250}, {"read-only-port", 0}}

// report runs the checks and returns the report and failure count.
func report(h Host, cfg Config) (string, int) {
	var b bytes.Buffer
	n := Write(&b, Run(context.Background(), h, cfg))
	return b.String(), n
}

func TestGoodHostPasses(t *testing.T) {
	out, failed := report(goodHost(), Config{NetworkBackend: "vxlan", Ports: allPorts})
	for _, want := range []string{
		"System:\n- running as root: ok\n- kernel version: ok (6.1.0-18-amd64)\n",
		"- nf_tables: ok (loaded)\n",
		"- nft_numgen: ok (module, CONFIG_NFT_NUMGEN=m)\n",
		"- cgroup hierarchy: ok (cgroup v2, cpu, memory and pids controllers)\n",
		"- Docker at the default socket: ok (Docker 20.10.24, API 1.41)\n",
		"- port 6443 (--https-listen-port): ok (free)\n",
		"\nSTATUS: pass\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if failed != 0 || strings.Contains(out, "fix:") || strings.Contains(out, "port 0") {
		t.Errorf("%d failures:\n%s", failed, out)
	}
}

func TestReportsEachFailureWithItsFix(t *testing.T) {
	h := goodHost()
	h.euid = 1000
	h.files["/proc/sys/kernel/osrelease"] = "4.9.0-8-arm64\n"
	h.files["/boot/config-4.9.0-8-arm64"] = strings.NewReplacer("CONFIG_VXLAN=m\n", "", "CONFIG_NFT_NUMGEN=m\n", "# CONFIG_NFT_NUMGEN is not set\n").Replace(goodConfig)
	h.files["/proc/mounts"] = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
	h.files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io pids\n"
	h.files["/proc/sys/net/ipv4/ip_forward"] = "0\n"
	h.files["/proc/filesystems"] = "nodev\tsysfs\n"
	delete(h.files, "/proc/modules")
	h.docker = DockerVersion{Version: "19.03.15", APIVersion: "1.40"}
	h.busy = map[int]bool{10250: true}
	out, failed := report(h, Config{DockerHost: "unix:///run/docker.sock", NetworkBackend: "vxlan", Ports: allPorts})
	for _, want := range []string{
		"- running as root: FAIL (running as uid 1000)\n    fix: run mizzen as root",
		"- kernel version: warning (4.9.0-8-arm64: older than 4.19, which mizzen is tested with)\n    fix: upgrade the kernel if a feature below is missing\n",
		"- ip_forward: warning (net.ipv4.ip_forward=0: mizzen turns it on at start)\n    fix: ",
		"- nft_numgen: FAIL (missing: needed for Service load balancing)\n    fix: load it with `modprobe nft_numgen`",
		"- vxlan: FAIL (missing: needed for the vxlan network backend)\n    fix: load it with `modprobe vxlan`",
		"or use --network-backend host-gw\n",
		"- overlay: ok (module, CONFIG_OVERLAY_FS=m)\n",
		"- cgroup hierarchy: FAIL (cgroup v2 without the memory controller)\n    fix: enable the controllers: add `cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1`",
		"- Docker at unix:///run/docker.sock: FAIL (Docker 19.03.15, API 1.40: API 1.41 or later is needed)\n    fix: upgrade Docker to 20.10 or later\n",
		"- port 10250 (--kubelet-port): FAIL (in use: bind: address already in use)\n    fix: stop what listens there (see `ss -ltnp 'sport = :10250'`) or choose another port with --kubelet-port\n",
		"\nSTATUS: 6 (fail)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if failed != 6 {
		t.Errorf("%d failures, want 6", failed)
	}
	if t.Failed() {
		t.Logf("report:\n%s", out)
	}
	// Only the checks that failed say how to fix them.
	if strings.Contains(out, "- nf_tables: ok (module, CONFIG_NF_TABLES=m)\n    fix") {
		t.Error("a passing check has a fix")
	}
}

func gz(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

// TestSingleChecks changes one thing of a good host and checks the one
// line it changes.
func TestSingleChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(h *fakeHost, cfg *Config)
		want    string
		failing int
	}{
		{"vxlan is optional with host-gw", func(h *fakeHost, cfg *Config) {
			h.files["/boot/config-6.1.0-18-amd64"] = strings.Replace(goodConfig, "CONFIG_VXLAN=m\n", "", 1)
			cfg.NetworkBackend = "host-gw"
		}, "- vxlan: warning (missing: needed for the vxlan network backend)\n    fix: load it with `modprobe vxlan`", 0},
		{"overlayfs missing is a warning", func(h *fakeHost, cfg *Config) {
			h.files["/boot/config-6.1.0-18-amd64"] = strings.Replace(goodConfig, "CONFIG_OVERLAY_FS=m\n", "", 1)
			h.files["/proc/filesystems"] = "nodev\tsysfs\n"
		}, "- overlay: warning (missing: needed for Docker's overlay2 storage driver)", 0},
		{"kernel config from /proc/config.gz", func(h *fakeHost, cfg *Config) {
			delete(h.files, "/boot/config-6.1.0-18-amd64")
			h.files["/proc/config.gz"] = gz(strings.ReplaceAll(goodConfig, "=m", "=y"))
		}, "- veth: ok (built in, CONFIG_VETH=y)\n", 0},
		{"module lists without a kernel config", func(h *fakeHost, cfg *Config) {
			delete(h.files, "/boot/config-6.1.0-18-amd64")
			h.files["/lib/modules/6.1.0-18-amd64/modules.builtin"] = "kernel/drivers/net/veth.ko\n"
			h.files["/lib/modules/6.1.0-18-amd64/modules.dep"] = "kernel/net/netfilter/nft_ct.ko.xz: kernel/net/netfilter/nf_tables.ko.xz\n"
		}, "- veth: ok (built in)\n- br_netfilter: FAIL (missing: needed for Service traffic between pods of one node)", 9},
		{"a module the config names but the host lacks", func(h *fakeHost, cfg *Config) {
			// Ubuntu on a Raspberry Pi: CONFIG_VXLAN=m, but vxlan.ko is in
			// linux-modules-extra-raspi, which is not installed.
			h.files["/lib/modules/6.1.0-18-amd64/modules.dep"] = modulesDep("vxlan")
		}, "- vxlan: FAIL (CONFIG_VXLAN=m, but vxlan is not among the modules in /lib/modules/6.1.0-18-amd64: " +
			"needed for the vxlan network backend)\n    fix: install the kernel's extra modules (on Ubuntu: " +
			"apt-get install linux-modules-extra-$(uname -r), or linux-modules-extra-raspi on a Raspberry Pi); " +
			"or use --network-backend host-gw\n", 1},
		{"every module the config names in the modules list", func(h *fakeHost, cfg *Config) {
			h.files["/lib/modules/6.1.0-18-amd64/modules.dep"] = modulesDep("")
		}, "- vxlan: ok (module, CONFIG_VXLAN=m)\n", 0},
		{"nothing to tell from but /sys and probes", func(h *fakeHost, cfg *Config) {
			delete(h.files, "/boot/config-6.1.0-18-amd64")
			delete(h.files, "/proc/modules")
			h.files["/sys/module/veth/uevent"] = ""
			h.files["/proc/sys/net/bridge/bridge-nf-call-iptables"] = "1\n"
		}, "- nf_tables: ok (answers netlink)\n" +
			"- nf_conntrack: warning (not found, and no kernel config (/proc/config.gz, /boot/config-*) or module list to tell: needed for Service NAT)\n" +
			"    fix: load it with `modprobe nf_conntrack`", 0},
		{"netlink probe failing", func(h *fakeHost, cfg *Config) {
			delete(h.files, "/boot/config-6.1.0-18-amd64")
			delete(h.files, "/proc/modules")
			h.nftErr = errors.New("protocol not supported")
		}, "- nf_tables: warning (not found", 0},
		{"cgroup v1", func(h *fakeHost, cfg *Config) {
			h.files["/proc/mounts"] = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n" +
				"cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
		}, "- cgroup hierarchy: ok (cgroup v1, cpu, memory and pids controllers)\n", 0},
		{"no pids controller", func(h *fakeHost, cfg *Config) {
			h.files["/sys/fs/cgroup/cgroup.controllers"] = "cpu memory\n"
		}, "- cgroup hierarchy: warning (cgroup v2, without the pids controller: pod pid limits are not enforced)", 0},
		{"no cgroups", func(h *fakeHost, cfg *Config) {
			h.files["/proc/mounts"] = "proc /proc proc rw 0 0\n"
		}, "- cgroup hierarchy: FAIL (no cgroup file system is mounted)\n    fix: mount cgroup2", 1},
		{"Docker unreachable", func(h *fakeHost, cfg *Config) {
			h.dockerErr = errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
		}, "- Docker at the default socket: FAIL (unreachable: Cannot connect to the Docker daemon", 1},
		{"newer Docker", func(h *fakeHost, cfg *Config) {
			h.docker = DockerVersion{Version: "28.0.1", APIVersion: "1.48"}
		}, "- Docker at the default socket: ok (Docker 28.0.1, API 1.48)\n", 0},
		{"unreadable kernel release", func(h *fakeHost, cfg *Config) {
			delete(h.files, "/proc/sys/kernel/osrelease")
		}, "- kernel version: warning (unknown: /proc/sys/kernel/osrelease is unreadable)\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHost()
			cfg := Config{NetworkBackend: "vxlan", Ports: allPorts}
			tc.change(h, &cfg)
			out, failed := report(h, cfg)
			if !strings.Contains(out, tc.want) || failed != tc.failing {
				t.Errorf("%d failures, want %d; want %q in:\n%s", failed, tc.failing, tc.want, out)
			}
		})
	}
}

// modulesDep is a modules.dep listing every module goodConfig has as =m
// but except.
func modulesDep(except string) string {
	dep := ""
	for _, m := range []string{"nf_tables", "nf_conntrack", "nf_nat", "nft_ct", "nft_nat", "nft_masq", "nft_numgen",
		"nft_fib_ipv4", "nft_reject_ipv4", "bridge", "veth", "br_netfilter", "vxlan", "overlay"} {
		if m != except {
			dep += "kernel/net/" + m + ".ko.zst: kernel/lib/dep.ko.zst\n"
		}
	}
	return dep
}

func TestMajorMinor(t *testing.T) {
	for in, want := range map[string][2]int{"6.1.0-18-amd64": {6, 1}, "1.41": {1, 41}, "5.15.0+": {5, 15}, "6.18rc1": {6, 18}} {
		if got, ok := majorMinor(in); !ok || got != want {
			t.Errorf("majorMinor(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "6", "x.y"} {
		if _, ok := majorMinor(in); ok {
			t.Errorf("majorMinor(%q) succeeded", in)
		}
	}
}
