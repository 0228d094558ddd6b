package runtimetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// BusyboxImage is the test image EnsureBusybox provides.
const BusyboxImage = "mizzen-test/busybox:latest"

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets get a symlink in the test image's /bin.
var busyboxApplets = []string{
	"sh", "ash", "cat", "echo", "hostname", "sleep", "ls", "id", "env", "pwd",
	"true", "false", "test", "[", "touch", "mkdir", "rm", "ps", "kill",
	"grep", "head", "tail", "wc", "date", "printf", "uname", "stat", "tee",
	"wget", "nc", "httpd", "ip", "ifconfig", "nslookup", "sed", "readlink",
}

var busyboxMu sync.Mutex // serialises EnsureBusybox within a test binary

// EnsureBusybox makes BusyboxImage exist in rt, importing a root
// filesystem made from the host's static busybox when it does not. It is
// idempotent. Without busybox it skips the test, or fails it when
// MIZZEN_TEST_STRICT=1.
func EnsureBusybox(t testing.TB, rt runtime.Runtime) string {
	t.Helper()
	busyboxMu.Lock()
	defer busyboxMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := rt.ImageStatus(ctx, BusyboxImage); err == nil {
		return BusyboxImage
	} else if !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("image status %s: %v", BusyboxImage, err)
	}
	rootfs, err := BusyboxRootfs()
	if err != nil {
		SkipOrFail(t, "cannot build the busybox image (apt-get install busybox-static): %v", err)
	}
	if _, err := rt.ImportImage(ctx, bytes.NewReader(rootfs), BusyboxImage, runtime.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}); err != nil {
		t.Fatalf("import %s: %v", BusyboxImage, err)
	}
	return BusyboxImage
}

// SkipOrFail skips the test, or fails it when MIZZEN_TEST_STRICT=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("MIZZEN_TEST_STRICT") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// BusyboxRootfs returns a root filesystem tar holding the host's static
// busybox, its applets as symlinks, and the usual top-level directories.
func BusyboxRootfs() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"dev/", 0o755}, {"proc/", 0o755}, {"sys/", 0o755}, {"root/", 0o700}, {"tmp/", 0o1777}, {"var/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ImageArchive returns a `docker save` style archive of one tiny image
// (a single file, /hello.txt) tagged tag, for LoadImages.
func ImageArchive(tag string) ([]byte, error) {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	msg := []byte("hello from " + tag + "\n")
	if err := lw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "hello.txt", Mode: 0o644, Size: int64(len(msg))}); err != nil {
		return nil, err
	}
	lw.Write(msg)
	if err := lw.Close(); err != nil {
		return nil, err
	}
	diffID := fmt.Sprintf("sha256:%x", sha256.Sum256(layer.Bytes()))
	config, err := json.Marshal(map[string]any{
		"architecture": goarch(), "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello.txt"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return nil, err
	}
	configName := fmt.Sprintf("%x.json", sha256.Sum256(config))
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{tag}, "Layers": []string{"layer/layer.tar"}}})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {"layer/layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		tw.Write(f.data)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
