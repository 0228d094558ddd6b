package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const manifestsWeb = `apiVersion: v1
kind: Namespace
metadata:
  name: web
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: web
data:
  color: blue
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`

const manifestsExtraCM = `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: web
`

// manifestsDir is where a server's auto-deployed manifests live.
func (s *server) manifestsDir() string { return filepath.Join(s.dataDir, "server", "manifests") }

func (s *server) writeManifest(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.manifestsDir(), name), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitGone waits until kubectl get finds no such object.
func (s *server) waitGone(t *testing.T, args ...string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		out, err := s.kubectlErr(append([]string{"get"}, args...)...)
		if err == nil || !strings.Contains(out, "NotFound") {
			return fmt.Errorf("still there: %v %s", err, out)
		}
		return nil
	})
}

func TestManifestsDirectoryIsAppliedAndFollowed(t *testing.T) {
	s := startServer(t)
	// The bundled DNS Service exists as soon as the server is ready.
	if out := s.kubectl("get", "svc", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP} {.metadata.annotations.deploy\\.mizzen\\.io/source}"); out != "10.43.0.10 coredns.yaml" {
		t.Fatalf("kube-dns: %q", out)
	}

	// A dropped file is applied.
	s.writeManifest(t, "web.yaml", manifestsWeb+manifestsExtraCM)
	s.waitOutput(t, []string{"get", "cm", "settings", "-n", "web", "-o", "jsonpath={.data.color}"}, "blue")
	s.kubectl("get", "svc", "web", "-n", "web")
	s.kubectl("get", "cm", "extra", "-n", "web")

	// An edit changes the objects; a user's label on them stays.
	s.kubectl("label", "cm", "settings", "-n", "web", "owner=me")
	s.writeManifest(t, "web.yaml", strings.Replace(manifestsWeb, "color: blue", "color: green", 1)+manifestsExtraCM)
	s.waitOutput(t, []string{"get", "cm", "settings", "-n", "web", "-o", "jsonpath={.data.color} {.metadata.labels.owner}"}, "green me")

	// An object removed from the file goes; the others stay.
	s.writeManifest(t, "web.yaml", strings.Replace(manifestsWeb, "color: blue", "color: green", 1))
	s.waitGone(t, "cm", "extra", "-n", "web")
	s.kubectl("get", "cm", "settings", "-n", "web")

	// A bad file is reported and does not stop its good objects or other
	// files.
	s.writeManifest(t, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_Valid}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: survivor}\n")
	s.writeManifest(t, "other.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-json"}}`)
	s.waitOutput(t, []string{"get", "cm", "survivor", "from-json"}, "survivor", "from-json")
	eventually(t, 20*time.Second, func() error {
		logs := s.logs()
		for _, want := range []string{`file=bad.yaml`, `document 1: yaml`, `ConfigMap \"Not_Valid\" is invalid`} {
			if !strings.Contains(logs, want) {
				return fmt.Errorf("server log lacks %q", want)
			}
		}
		return nil
	})
	s.waitOutput(t, []string{"get", "events", "-n", "kube-system"}, "ApplyManifestFailed", "addon/bad", "Not_Valid")

	// A removed file's objects go.
	if err := os.Remove(filepath.Join(s.manifestsDir(), "web.yaml")); err != nil {
		t.Fatal(err)
	}
	s.waitGone(t, "cm", "settings", "-n", "web")
	s.waitGone(t, "svc", "web", "-n", "web")
	s.kubectl("get", "cm", "survivor", "from-json")
}

func TestManifestsDisableRemovesBundledDNSService(t *testing.T) {
	s := startServer(t)
	s.kubectl("get", "svc", "-n", "kube-system", "kube-dns")
	s.stop()
	s.args = append(s.args, "--disable", "coredns", "--disable", "traefik") // k3s's name, nothing to remove here
	s.start()
	s.waitGone(t, "svc", "-n", "kube-system", "kube-dns")
	if _, err := os.Stat(filepath.Join(s.manifestsDir(), "coredns.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("coredns.yaml with --disable coredns: %v", err)
	}
	// An unknown name is a usage error (k3s's component names, such as
	// traefik, are accepted).
	out, err := exec.Command(binary, "server", "--disable", "traefk", "--data-dir", t.TempDir()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `--disable: "traefk" is not a bundled manifest`) {
		t.Errorf("--disable traefk: %v\n%s", err, out)
	}
}
