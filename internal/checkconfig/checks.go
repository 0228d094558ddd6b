package checkconfig

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// minKernel is the oldest kernel mizzen is tested with (nftables NAT
// chains without per-family modules, cgroup v2 memory control); older ones
// get a warning.
var minKernel = [2]int{4, 19}

// minDockerAPI is the oldest Docker API mizzen drives (Docker 20.10).
var minDockerAPI = [2]int{1, 41}

// release returns the kernel release (uname -r).
func release(h Host) string {
	b, err := h.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func checkSystem(h Host) []Result {
	root := Result{Section: "System", Name: "running as root", Status: OK}
	if uid := h.EUID(); uid != 0 {
		root.Status, root.Detail = Fail, "running as uid "+strconv.Itoa(uid)
		root.Fix = "run mizzen as root (sudo mizzen ...): it manages network interfaces, nftables and Docker"
	}
	kernel := Result{Section: "System", Name: "kernel version"}
	rel := release(h)
	switch v, ok := majorMinor(rel); {
	case rel == "":
		kernel.Status, kernel.Detail = Warn, "unknown: /proc/sys/kernel/osrelease is unreadable"
	case !ok:
		kernel.Status, kernel.Detail = Warn, rel+": not a version mizzen can read"
	case less(v, minKernel):
		// Vendor kernels (RHEL 8's 4.18) backport what mizzen needs; the
		// features themselves are checked one by one below.
		kernel.Status, kernel.Detail = Warn, fmt.Sprintf("%s: older than %d.%d, which mizzen is tested with", rel, minKernel[0], minKernel[1])
		kernel.Fix = "upgrade the kernel if a feature below is missing"
	default:
		kernel.Status, kernel.Detail = OK, rel
	}
	fwd := Result{Section: "System", Name: "ip_forward", Status: OK, Detail: "net.ipv4.ip_forward=1"}
	b, err := h.ReadFile("/proc/sys/net/ipv4/ip_forward")
	switch {
	case err != nil:
		fwd.Status, fwd.Detail = Fail, "/proc/sys/net/ipv4/ip_forward is unreadable"
		fwd.Fix = "use a kernel with IPv4 networking and mount /proc"
	case strings.TrimSpace(string(b)) != "1":
		fwd.Status, fwd.Detail = Warn, "net.ipv4.ip_forward=0: mizzen turns it on at start"
		fwd.Fix = "to keep it on: echo net.ipv4.ip_forward=1 > /etc/sysctl.d/90-mizzen.conf && sysctl --system"
	}
	return []Result{root, kernel, fwd}
}

func checkKernel(h Host, cfg Config) []Result {
	rel := release(h)
	kc := loadKernelConfig(h, rel)
	mi := loadModuleIndex(h, rel)
	var out []Result
	for _, f := range features(cfg.NetworkBackend) {
		out = append(out, checkFeature(h, f, kc, mi))
	}
	return out
}

// checkCgroups needs a cgroup hierarchy with the cpu and memory
// controllers: cgroup v2 at /sys/fs/cgroup, or v1 hierarchies.
func checkCgroups(h Host) Result {
	r := Result{Section: "Cgroups", Name: "cgroup hierarchy"}
	mounts, err := h.ReadFile("/proc/mounts")
	if err != nil {
		r.Status, r.Detail, r.Fix = Fail, "/proc/mounts is unreadable", "mount /proc"
		return r
	}
	v1 := map[string]bool{}
	v2 := false
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			v2 = v2 || f[1] == "/sys/fs/cgroup"
		case "cgroup":
			for _, o := range strings.Split(f[3], ",") {
				v1[o] = true
			}
		}
	}
	var have func(string) bool
	var version string
	switch {
	case v2:
		version = "cgroup v2"
		b, _ := h.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		ctrls := strings.Fields(string(b))
		have = func(c string) bool {
			for _, x := range ctrls {
				if x == c {
					return true
				}
			}
			return false
		}
	case len(v1) > 0:
		version = "cgroup v1"
		have = func(c string) bool { return v1[c] }
	default:
		r.Status, r.Detail = Fail, "no cgroup file system is mounted"
		r.Fix = "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) or install cgroupfs-mount"
		return r
	}
	var missing []string
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !have(c) {
			missing = append(missing, c)
		}
	}
	switch {
	case len(missing) == 0:
		r.Status, r.Detail = OK, version+", cpu, memory and pids controllers"
	case len(missing) == 1 && missing[0] == "pids":
		r.Status, r.Detail = Warn, version+", without the pids controller: pod pid limits are not enforced"
		r.Fix = "use a kernel with CONFIG_CGROUP_PIDS=y"
	default:
		r.Status, r.Detail = Fail, version+" without the "+strings.Join(missing, ", ")+" controller"
		r.Fix = "enable the controllers: add `cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1` to the kernel " +
			"command line (on a Raspberry Pi: /boot/firmware/cmdline.txt or /boot/cmdline.txt) and reboot"
	}
	return r
}

func checkDocker(ctx context.Context, h Host, host string) Result {
	where := host
	if where == "" {
		where = "the default socket"
	}
	r := Result{Section: "Docker", Name: "Docker at " + where}
	v, err := h.Docker(ctx, host)
	if err != nil {
		r.Status, r.Detail = Fail, "unreachable: "+err.Error()
		r.Fix = "install and start Docker (apt-get install docker.io; systemctl start docker), or point --docker-host at it"
		return r
	}
	api, ok := majorMinor(v.APIVersion)
	if !ok || less(api, minDockerAPI) {
		r.Status, r.Detail = Fail, fmt.Sprintf("Docker %s, API %s: API %d.%d or later is needed", v.Version, v.APIVersion, minDockerAPI[0], minDockerAPI[1])
		r.Fix = "upgrade Docker to 20.10 or later"
		return r
	}
	r.Status, r.Detail = OK, fmt.Sprintf("Docker %s, API %s", v.Version, v.APIVersion)
	return r
}

func checkPort(h Host, p Port) Result {
	r := Result{Section: "Ports", Name: fmt.Sprintf("port %d (--%s)", p.Port, p.Flag), Status: OK, Detail: "free"}
	if err := h.PortFree(p.Port); err != nil {
		r.Status, r.Detail = Fail, "in use: "+err.Error()
		r.Fix = fmt.Sprintf("stop what listens there (see `ss -ltnp 'sport = :%d'`) or choose another port with --%s", p.Port, p.Flag)
	}
	return r
}

// majorMinor reads "6.1.0-18-amd64" or "1.41" as {6, 1} or {1, 41}.
func majorMinor(s string) ([2]int, bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = parts[1][:i]
	}
	minor, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return [2]int{}, false
	}
	return [2]int{major, minor}, true
}

func less(a, b [2]int) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
