package nodestatus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host reads the facts about the machine that a Node reports. The real
// one (used when Config.Host is nil) reads /proc, /sys, /etc and statfs;
// tests feed values.
type Host interface {
	// Info returns the machine's identity and size.
	Info() (HostInfo, error)
	// Usage returns current resource use; the disk figures are those of
	// the filesystem holding dir.
	Usage(dir string) (HostUsage, error)
	// DefaultAddress returns the address of the interface that holds the
	// default route.
	DefaultAddress() (netip.Addr, error)
}

// HostInfo is what a Node reports as its capacity and nodeInfo.
type HostInfo struct {
	CPUs          int   // online CPUs
	MemoryBytes   int64 // MemTotal
	MachineID     string
	SystemUUID    string
	BootID        string
	KernelVersion string // uname -r
	OSImage       string // PRETTY_NAME of os-release
}

// HostUsage is current resource use, the input of the pressure conditions.
type HostUsage struct {
	MemoryAvailable int64 // MemAvailable, bytes
	DiskCapacity    int64 // bytes of the data directory's filesystem
	DiskAvailable   int64 // bytes available to unprivileged users
	PIDs            int64 // tasks on the host
	PIDMax          int64 // the lower of kernel.pid_max and kernel.threads-max
}

// localHost is the Host of the machine this process runs on.
type localHost struct{}

// Info implements Host.
func (localHost) Info() (HostInfo, error) {
	info := HostInfo{CPUs: goruntime.NumCPU(), OSImage: "Linux"}
	mem, err := readMeminfo()
	if err != nil {
		return info, err
	}
	info.MemoryBytes = mem["MemTotal"]
	if info.MachineID, err = firstFile("/etc/machine-id", "/var/lib/dbus/machine-id"); err != nil {
		return info, fmt.Errorf("machine ID: %w", err)
	}
	if info.BootID, err = firstFile("/proc/sys/kernel/random/boot_id"); err != nil {
		return info, fmt.Errorf("boot ID: %w", err)
	}
	info.SystemUUID, err = firstFile("/sys/class/dmi/id/product_uuid")
	if err != nil || info.SystemUUID == "" {
		info.SystemUUID = info.MachineID
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return info, fmt.Errorf("uname: %w", err)
	}
	info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if b, err := os.ReadFile(p); err == nil {
			if name := prettyName(b); name != "" {
				info.OSImage = name
			}
			break
		}
	}
	return info, nil
}

// Usage implements Host.
func (localHost) Usage(dir string) (HostUsage, error) {
	var u HostUsage
	mem, err := readMeminfo()
	if err != nil {
		return u, err
	}
	u.MemoryAvailable = mem["MemAvailable"]
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return u, fmt.Errorf("statfs %s: %w", dir, err)
	}
	u.DiskCapacity = int64(st.Blocks) * int64(st.Bsize)
	u.DiskAvailable = int64(st.Bavail) * int64(st.Bsize)
	// /proc/loadavg counts every task; sysinfo(2) would truncate at 65535,
	// which is why the kubelet prefers it too.
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return u, fmt.Errorf("read task count: %w", err)
	}
	if u.PIDs, err = parseLoadavgTasks(string(b)); err != nil {
		return u, err
	}
	u.PIDMax = -1
	for _, p := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		s, err := firstFile(p)
		if err != nil {
			return u, fmt.Errorf("read task limit: %w", err)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u, fmt.Errorf("parse %s: %w", p, err)
		}
		if u.PIDMax < 0 || n < u.PIDMax {
			u.PIDMax = n
		}
	}
	return u, nil
}

// DefaultAddress implements Host. Connecting a UDP socket sends nothing
// but makes the kernel pick the source address of the route towards the
// target; a public resolver's address is reached by the default route.
// Without one, it is the first global unicast address of any interface.
func (localHost) DefaultAddress() (netip.Addr, error) {
	for _, target := range []string{"8.8.8.8:53", "[2001:4860:4860::8888]:53"} {
		c, err := net.Dial("udp", target)
		if err != nil {
			continue
		}
		ap, perr := netip.ParseAddrPort(c.LocalAddr().String())
		c.Close()
		if perr == nil && ap.Addr().IsGlobalUnicast() {
			return ap.Addr().Unmap(), nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list interface addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
			return p.Addr().Unmap(), nil
		}
	}
	return netip.Addr{}, errors.New("no default route and no global unicast address")
}

// firstFile returns the trimmed content of the first of paths that can be
// read.
func firstFile(paths ...string) (string, error) {
	var err error
	for _, p := range paths {
		var b []byte
		if b, err = os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", err
}

func readMeminfo() (map[string]int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("read meminfo: %w", err)
	}
	defer f.Close()
	m, err := parseMeminfo(f)
	if err != nil {
		return nil, fmt.Errorf("read meminfo: %w", err)
	}
	return m, nil
}

// parseMeminfo returns /proc/meminfo's fields in bytes.
func parseMeminfo(r io.Reader) (map[string]int64, error) {
	m := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		m[key] = n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if m["MemTotal"] == 0 {
		return nil, errors.New("no MemTotal")
	}
	return m, nil
}

// parseLoadavgTasks returns the task count of /proc/loadavg, the part
// after the slash in its fourth field ("1/523").
func parseLoadavgTasks(s string) (int64, error) {
	fields := strings.Fields(s)
	if len(fields) < 4 {
		return 0, fmt.Errorf("parse loadavg %q: too few fields", s)
	}
	_, total, ok := strings.Cut(fields[3], "/")
	if !ok {
		return 0, fmt.Errorf("parse loadavg %q: no task count", s)
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse loadavg %q: %w", s, err)
	}
	return n, nil
}

// prettyName returns PRETTY_NAME from an os-release file.
func prettyName(b []byte) string {
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("PRETTY_NAME="))
		if !ok {
			continue
		}
		s := string(v)
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return strings.Trim(s, `"'`)
	}
	return ""
}
