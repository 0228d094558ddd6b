package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

// testRegistry serves one image over the registry HTTP API v2 on
// loopback, to clients presenting user:pass (Basic auth).
type testRegistry struct {
	blobs    map[string][]byte // by digest
	manifest []byte
	user     string
	pass     string
}

func newTestRegistry(t *testing.T, user, pass string) (*testRegistry, string) {
	rootfs, err := runtimetest.BusyboxRootfs()
	if err != nil {
		runtimetest.SkipOrFail(t, "busybox rootfs: %v", err)
	}
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer)
	zw.Write(rootfs)
	zw.Close()
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sleep", "3600"}, "Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(rootfs)}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": digest(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
			"size": layer.Len(), "digest": digest(layer.Bytes())}},
	})
	r := &testRegistry{blobs: map[string][]byte{digest(config): config, digest(layer.Bytes()): layer.Bytes()},
		manifest: manifest, user: user, pass: pass}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return r, ln.Addr().String()
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="mizzen-test"`)
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	path := req.URL.Path
	switch {
	case path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(path, "/manifests/"):
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		w.Header().Set("Docker-Content-Digest", fmt.Sprintf("sha256:%x", sha256.Sum256(r.manifest)))
		w.Header().Set("Content-Length", fmt.Sprint(len(r.manifest)))
		if req.Method != http.MethodHead {
			w.Write(r.manifest)
		}
	case strings.Contains(path, "/blobs/"):
		b, ok := r.blobs[path[strings.LastIndex(path, "/")+1:]]
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if req.Method != http.MethodHead {
			w.Write(b)
		}
	default:
		http.NotFound(w, req)
	}
}

// TestKubeletPullsFromAPrivateRegistry pulls an image from a registry on
// loopback that needs credentials: refused without imagePullSecrets
// (ErrImagePull, then ImagePullBackOff), pulled and run with them.
func TestKubeletPullsFromAPrivateRegistry(t *testing.T) {
	s := startNode(t)
	_, addr := newTestRegistry(t, "puller", "s3cret")
	image := addr + "/team/app:" + s.node
	t.Cleanup(func() { exec.Command("docker", "rmi", image).Run() })
	pod := func(name, secrets string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q},"spec":{"terminationGracePeriodSeconds":1,%s"containers":[{"name":"app","image":%q}]}}`, name, secrets, image)
	}
	if out, err := s.kubectlIn(pod("anonymous", ""), "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, 60*time.Second, func() error {
		out := s.kubectl("get", "pod", "anonymous", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
		if out != "ImagePullBackOff" && out != "ErrImagePull" {
			return fmt.Errorf("waiting reason %q", out)
		}
		if ev := s.kubectl("get", "events", "--field-selector", "involvedObject.name=anonymous"); !strings.Contains(ev, "Failed to pull image") {
			return fmt.Errorf("no pull failure event:\n%s", ev)
		}
		return nil
	})

	s.kubectl("create", "secret", "docker-registry", "regcred", "--docker-server="+addr,
		"--docker-username=puller", "--docker-password=s3cret")
	if out, err := s.kubectlIn(pod("authorized", `"imagePullSecrets":[{"name":"regcred"}],`), "create", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s.kubectl("wait", "pod/authorized", "--for=condition=Ready", "--timeout=90s")
	ev := s.kubectl("get", "events", "--field-selector", "involvedObject.name=authorized")
	if !strings.Contains(ev, "Pulling image") || !strings.Contains(ev, "Successfully pulled image") {
		t.Fatalf("pull events:\n%s", ev)
	}
}
