package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"
)

// MachineInfo is /spec: a subset of cAdvisor's MachineInfo with its JSON
// names.
type MachineInfo struct {
	Timestamp      time.Time `json:"timestamp"`
	NumCores       int       `json:"num_cores"`
	MemoryCapacity uint64    `json:"memory_capacity"`
	MachineID      string    `json:"machine_id"`
	SystemUUID     string    `json:"system_uuid"`
	BootID         string    `json:"boot_id"`
}

// spec serves /spec.
func (s *server) spec(w http.ResponseWriter, r *http.Request) {
	info := MachineInfo{
		Timestamp: time.Now(),
		NumCores:  goruntime.NumCPU(),
		MachineID: readTrimmed("/etc/machine-id"),
		BootID:    readTrimmed("/proc/sys/kernel/random/boot_id"),
	}
	if s.cfg.Node != nil {
		if n := s.cfg.Node(); n != nil {
			info.SystemUUID = n.Status.NodeInfo.SystemUUID
			if info.MachineID == "" {
				info.MachineID = n.Status.NodeInfo.MachineID
			}
		}
	}
	if m, err := procMemory(); err == nil {
		info.MemoryCapacity = m.total
	}
	writeJSON(w, info)
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// userHZ is the unit of /proc/stat times (USER_HZ, 100 on Linux).
const userHZ = 100

// procCPUNanos is the host's busy CPU time from /proc/stat: every state
// but idle and iowait, as cAdvisor counts it.
func procCPUNanos() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("read /proc/stat: no cpu line")
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 { // idle, iowait; guest times are in user already
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read /proc/stat: %w", err)
		}
		busy += n
	}
	return busy * (1e9 / userHZ), nil
}

// memory is the host's memory use in bytes.
type memory struct {
	total, usage, workingSet, rss uint64
}

// procMemory reads /proc/meminfo: usage is total less free, the working
// set is usage less inactive file pages (the kubelet's formula), and RSS
// is anonymous memory.
func procMemory() (memory, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return memory{}, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	defer f.Close()
	kb := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
			kb[name] = n * 1024
		}
	}
	if err := sc.Err(); err != nil {
		return memory{}, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	m := memory{total: kb["MemTotal"], rss: kb["AnonPages"]}
	if m.total == 0 {
		return memory{}, errors.New("read /proc/meminfo: no MemTotal")
	}
	m.usage = m.total - min(kb["MemFree"], m.total)
	m.workingSet = m.usage - min(kb["Inactive(file)"], m.usage)
	return m, nil
}

// bootTime is when the host booted, from /proc/stat's btime.
func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("read /proc/stat btime: %w", err)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, errors.New("read /proc/stat: no btime")
}
