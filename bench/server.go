package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one running `mizzen server` process with its own data
// directory and loopback ports.
type server struct {
	dir        string
	kubeconfig string
	port       int
	etcdPort   int
	cmd        *exec.Cmd
	started    time.Time
	// exited is closed by the goroutine that waits for the process.
	exited chan struct{}
	logf   *os.File
}

// fleet tracks the servers started so that every one is stopped at exit,
// whatever happened.
type fleet struct {
	binary string
	root   string
	spawn  chan spawnRequest
	mu     sync.Mutex
	live   map[*server]bool // guarded by mu
}

// spawnRequest asks the spawning thread to start cmd.
type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func newFleet(binary, root string) *fleet {
	f := &fleet{binary: binary, root: root, spawn: make(chan spawnRequest), live: map[*server]bool{}}
	// Pdeathsig is sent when the thread that forked the child exits, not
	// the process: fork from one locked thread that lives until we exit.
	go func() {
		runtime.LockOSThread()
		for r := range f.spawn {
			r.done <- r.cmd.Start()
		}
	}()
	return f
}

// freePorts returns n distinct unused loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start starts a server in a fresh directory under the fleet's root.
// started is taken just before the process is forked.
func (f *fleet) start() (*server, error) {
	dir, err := os.MkdirTemp(f.root, "server-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig.yaml"), port: ports[0], etcdPort: ports[1],
		exited: make(chan struct{}), logf: logf}
	s.cmd = exec.Command(f.binary, "server",
		"--data-dir", filepath.Join(dir, "data"),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(s.port),
		"--etcd-client-port", strconv.Itoa(s.etcdPort),
		"--etcd-peer-port", strconv.Itoa(ports[2]),
		"--write-kubeconfig", s.kubeconfig,
		"--disable-agent")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Its own process group keeps a terminal's ^C for us (we stop it in
	// order); Pdeathsig stops it if we are killed outright.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	f.mu.Lock()
	defer f.mu.Unlock()
	done := make(chan error, 1)
	s.started = time.Now()
	f.spawn <- spawnRequest{s.cmd, done}
	if err := <-done; err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	f.live[s] = true
	return s, nil
}

// stop stops s and removes its directory.
func (f *fleet) stop(s *server) (time.Duration, error) {
	d, err := s.stop()
	s.logf.Close()
	f.mu.Lock()
	delete(f.live, s)
	f.mu.Unlock()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return d, err
}

// stopAll stops every server still running.
func (f *fleet) stopAll() {
	f.mu.Lock()
	var all []*server
	for s := range f.live {
		all = append(all, s)
	}
	f.mu.Unlock()
	for _, s := range all {
		_, _ = f.stop(s)
	}
}

// waitReady polls /readyz until it answers 200 and returns the time since
// the process was started.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "https://127.0.0.1:" + strconv.Itoa(s.port) + "/readyz"
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.started), nil
			}
		}
		select {
		case <-s.exited:
			return 0, fmt.Errorf("server exited during start%s", s.diagnosis())
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("server not ready after %v%s", timeout, s.diagnosis())
		}
	}
}

// waitKubeconfig waits until the admin kubeconfig has been written.
func (s *server) waitKubeconfig(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if st, err := os.Stat(s.kubeconfig); err == nil && st.Size() > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no kubeconfig at %s after %v", s.kubeconfig, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit; after 20 s it kills the
// process group. It returns how long the clean stop took.
func (s *server) stop() (time.Duration, error) {
	select {
	case <-s.exited:
		return 0, nil
	default:
	}
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return time.Since(start), nil
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return time.Since(start), errors.New("server did not stop within 20s of SIGTERM; killed")
	}
}

// etcdEndpoint is the embedded etcd's client address.
func (s *server) etcdEndpoint() etcdEndpoint {
	return etcdEndpoint{addr: "127.0.0.1:" + strconv.Itoa(s.etcdPort), tlsDir: filepath.Join(s.dir, "data", "server", "tls", "etcd")}
}

// diagnosis says whether s has exited and shows the end of its log.
func (s *server) diagnosis() string {
	state := "still running"
	select {
	case <-s.exited:
		state = "exited: " + s.cmd.ProcessState.String()
	default:
	}
	return fmt.Sprintf("\nserver (pid %d) %s; last lines of its log:\n%s", s.cmd.Process.Pid, state, s.logTail())
}

// logTail returns the last lines of the server's log.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logf.Name())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// procStatus returns a field of /proc/PID/status in bytes (the kB fields).
func (s *server) procStatus(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, s.cmd.Process.Pid)
}

// usage is what a process has consumed so far.
type usage struct {
	at         time.Time
	cpu        time.Duration // user + system
	writeBytes int64         // bytes sent to the block layer
}

// usage reads /proc/PID/stat and /proc/PID/io.
func (s *server) usage() (usage, error) {
	u := usage{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return u, err
	}
	// The fields after the parenthesised command name; utime and stime
	// are fields 14 and 15 of the line, in clock ticks (USER_HZ = 100).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return u, fmt.Errorf("short /proc/%d/stat", s.cmd.Process.Pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", s.cmd.Process.Pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(io), "\n") {
		name, val, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if name == "write_bytes" {
			u.writeBytes = n
		}
	}
	return u, nil
}
