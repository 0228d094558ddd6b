package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// etcdSnapshot runs `mizzen etcd-snapshot SUB` against s and returns its
// combined output and exit code.
func (s *server) etcdSnapshot(sub string, args ...string) (string, int) {
	s.t.Helper()
	cmd := exec.Command(binary, append([]string{"etcd-snapshot", sub,
		"--data-dir", s.dataDir, "--etcd-client-port", strconv.Itoa(s.etcdPort)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		s.t.Fatal(err)
	}
	return string(out), 0
}

// snapshotNames lists the names `etcd-snapshot ls` prints.
func (s *server) snapshotNames() []string {
	s.t.Helper()
	out, code := s.etcdSnapshot("ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) == 0 || !regexp.MustCompile(`^Name\s+Location\s+Size\s+Created$`).MatchString(lines[0]) {
		s.t.Fatalf("etcd-snapshot ls: exit %d\n%s", code, out)
	}
	var names []string
	for _, l := range lines[1:] {
		names = append(names, strings.Fields(l)[0])
	}
	return names
}

// TestEtcdSnapshotSaveAndClusterResetRestore saves a snapshot, deletes
// what it holds, restores it with --cluster-reset and finds it back; on
// the way, scheduled snapshots (every second, two kept) come and go, and
// `delete` removes snapshots by name.
func TestEtcdSnapshotSaveAndClusterResetRestore(t *testing.T) {
	kubectlPath(t)
	s := startServer(t, "--etcd-snapshot-schedule-cron", "* * * * * *", "--etcd-snapshot-retention", "2")
	snapDir := filepath.Join(s.dataDir, "server", "db", "snapshots")
	s.kubectl("create", "configmap", "keep-a", "--from-literal=k=a")
	s.kubectl("create", "configmap", "keep-b", "--from-literal=k=b")

	out, code := s.etcdSnapshot("save", "--name", "before")
	m := regexp.MustCompile(`(?m)^Snapshot (before-[a-z0-9.-]+-\d+) saved\.$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("etcd-snapshot save: exit %d\n%s", code, out)
	}
	before := m[1]
	file := filepath.Join(snapDir, before)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file %s: %v %v, want mode 0600", file, fi, err)
	}
	ls, _ := s.etcdSnapshot("list")
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(before) + `\s+file://` + regexp.QuoteMeta(file) + `\s+\d+\s+\d{4}-\d\d-\d\dT`).MatchString(ls) {
		t.Errorf("etcd-snapshot ls does not show %s:\n%s", before, ls)
	}

	// Scheduled snapshots: new ones keep coming, only the newest two stay
	// (three for a moment, between a save and its prune).
	scheduled := regexp.MustCompile(`^etcd-snapshot-.+-\d+$`)
	seen := map[string]bool{}
	eventually(t, 20*time.Second, func() error {
		var now []string
		for _, n := range s.snapshotNames() {
			if scheduled.MatchString(n) {
				now = append(now, n)
				seen[n] = true
			}
		}
		if len(now) > 3 {
			t.Fatalf("%d scheduled snapshots kept with --etcd-snapshot-retention 2: %v", len(now), now)
		}
		if len(seen) < 3 || len(now) != 2 {
			return fmt.Errorf("scheduled snapshots now %v, %d seen", now, len(seen))
		}
		return nil
	})
	if !slices.Contains(s.snapshotNames(), before) {
		t.Fatal("the schedule pruned an on-demand snapshot")
	}

	// delete removes a snapshot; an unknown name is an error.
	out, code = s.etcdSnapshot("save", "--name", "extra")
	extra := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(out), "Snapshot "), " saved.")
	if code != 0 {
		t.Fatalf("etcd-snapshot save: exit %d\n%s", code, out)
	}
	if out, code := s.etcdSnapshot("delete", extra); code != 0 || !strings.Contains(out, "Snapshot "+extra+" deleted.") {
		t.Errorf("etcd-snapshot delete %s: exit %d\n%s", extra, code, out)
	}
	if slices.Contains(s.snapshotNames(), extra) {
		t.Errorf("%s still listed after delete", extra)
	}
	if out, code := s.etcdSnapshot("delete", "no-such-snapshot"); code != 1 || !strings.Contains(out, `no snapshot named "no-such-snapshot"`) {
		t.Errorf("etcd-snapshot delete no-such-snapshot: exit %d\n%s", code, out)
	}

	s.kubectl("delete", "configmap", "keep-a", "keep-b")
	s.kubectl("create", "configmap", "after")

	reset := func() (string, int) {
		args := append(slices.Clone(s.args), "--cluster-reset", "--cluster-reset-restore-path", file)
		out, err := exec.Command(binary, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := reset(); code != 1 || !strings.Contains(out, "a mizzen server is running") {
		t.Fatalf("--cluster-reset while the server runs: exit %d\n%s", code, out)
	}
	s.stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("server exited with %d on SIGTERM:\n%s", code, s.logs())
	}
	out, code = reset()
	if code != 0 || !strings.Contains(out, "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now") {
		t.Fatalf("--cluster-reset --cluster-reset-restore-path: exit %d\n%s", code, out)
	}
	if old, _ := filepath.Glob(filepath.Join(s.dataDir, "server", "db", "etcd-old-*")); len(old) != 1 {
		t.Errorf("old etcd data moved aside to %v, want one etcd-old-<time>", old)
	}

	s.start()
	for _, cm := range []string{"keep-a", "keep-b"} {
		if got := s.kubectl("get", "configmap", cm, "-o", "jsonpath={.data.k}"); got != strings.TrimPrefix(cm, "keep-") {
			t.Errorf("restored configmap %s has k=%q", cm, got)
		}
	}
	if out, err := s.kubectlErr("get", "configmap", "after"); err == nil {
		t.Errorf("configmap created after the snapshot survived the restore:\n%s", out)
	}
	s.kubectl("create", "configmap", "post-restore")
}

// TestEtcdSnapshotNeedsEmbeddedEtcd: with an external datastore the
// snapshot commands and flags say they need the embedded etcd.
func TestEtcdSnapshotNeedsEmbeddedEtcd(t *testing.T) {
	for _, args := range [][]string{
		{"etcd-snapshot", "save", "--datastore-endpoint", "https://127.0.0.1:1"},
		{"etcd-snapshot", "ls", "--datastore-endpoint", "https://127.0.0.1:1"},
		{"server", "--disable-agent", "--datastore-endpoint", "https://127.0.0.1:1", "--cluster-reset"},
		{"server", "--disable-agent", "--datastore-endpoint", "https://127.0.0.1:1", "--etcd-snapshot-schedule-cron", "0 * * * *"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "need the embedded etcd") {
			t.Errorf("%v: %v, want exit 2 saying snapshots need the embedded etcd\n%s", args, err, out)
		}
	}
}
