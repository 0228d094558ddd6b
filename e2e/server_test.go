package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExternalDatastore runs a second server on the first one's etcd
// (--datastore-endpoint): both serve the same objects.
func TestExternalDatastore(t *testing.T) {
	a := startServer(t)
	etcdTLS := a.dataDir + "/server/tls/etcd/"
	b := startServer(t, "--datastore-endpoint", "https://127.0.0.1:"+strconv.Itoa(a.etcdPort),
		"--datastore-cafile", etcdTLS+"server-ca.crt", "--datastore-certfile", etcdTLS+"client.crt", "--datastore-keyfile", etcdTLS+"client.key")
	a.kubectl("create", "configmap", "shared", "--from-literal=k=v")
	if got := b.kubectl("get", "cm", "shared", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Fatalf("second server sees %q", got)
	}
	if _, err := os.Stat(b.dataDir + "/server/db/etcd"); err == nil {
		t.Fatal("server with --datastore-endpoint started an embedded etcd")
	}
}

func TestBadFlagsExit2WithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--bind-address", "not-an-ip"},
		{"server", "--service-cidr", "10.43.0.0/99"},
		{"server", "--no-such-flag"},
		{"server", "--network-backend", "carrier-pigeon"},
		{"bogus-command"},
	} {
		cmd := exec.Command(binary, args...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: err %v, want exit 2\n%s", args, err, out)
			continue
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; lines != 1 {
			t.Errorf("%v: %d lines of output, want 1:\n%s", args, lines, out)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	cmd := exec.Command(binary, "server", "--disable-agent")
	cmd.Env = append(os.Environ(), "MIZZEN_BIND_ADDRESS=bogus")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--bind-address") {
		t.Fatalf("MIZZEN_BIND_ADDRESS=bogus: %v\n%s", err, out)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "mizzen version ") || !strings.Contains(string(out), "v1.37.2+mizzen") {
		t.Fatalf("version: %v\n%s", err, out)
	}
	s := startServer(t)
	out2 := s.kubectl("version", "-o", "json")
	if !strings.Contains(out2, `"gitVersion": "v1.37.2+mizzen"`) {
		t.Fatalf("kubectl version:\n%s", out2)
	}
}

func TestKubeconfigModeAndDefaultServiceAccounts(t *testing.T) {
	s := startServer(t, "--write-kubeconfig-mode", "0640", "--tls-san", "mizzen.example.test")
	fi, err := os.Stat(s.kubeconfig)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("kubeconfig mode %v, %v; want 0640", fi.Mode().Perm(), err)
	}
	for _, f := range []string{"server/tls/server-ca.key", "server/tls/serving.key", "server/token"} {
		fi, err := os.Stat(s.dataDir + "/" + f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	tok, _ := os.ReadFile(s.dataDir + "/server/token")
	if !strings.HasPrefix(string(tok), "K10") || !strings.Contains(string(tok), "::server:") {
		t.Fatalf("token %q is not K10<hash>::server:<secret>", tok)
	}
	s.kubectl("create", "namespace", "fresh")
	eventually(t, 10*time.Second, func() error {
		_, err := s.kubectlErr("get", "serviceaccount", "default", "-n", "fresh")
		return err
	})
	// The serving certificate carries --tls-san.
	raw, err := os.ReadFile(s.dataDir + "/server/tls/serving.crt")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("serving.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cert.DNSNames, "mizzen.example.test") || !slices.Contains(cert.DNSNames, "localhost") {
		t.Fatalf("serving certificate DNS SANs %v lack --tls-san or localhost", cert.DNSNames)
	}
}
