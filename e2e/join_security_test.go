package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizzen-dev/mizzen/internal/join"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

// TestAgentRefusesLabelsANodeMayNotSet: NodeRestriction refuses a node
// registering with kubernetes.io labels other than the kubelet's (a
// worker claiming node-role.kubernetes.io/control-plane would attract
// control-plane workloads), so the agent says so up front instead of
// retrying a registration the server refuses.
func TestAgentRefusesLabelsANodeMayNotSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "agent", "--server", "https://127.0.0.1:1", "--token", "K10"+strings.Repeat("0", 64)+"::server:secret",
		"--data-dir", t.TempDir(), "--node-name", "n1", "--node-label", "node-role.kubernetes.io/control-plane=true")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), `may not set "node-role.kubernetes.io/control-plane"`) {
		t.Fatalf("agent with a control-plane label: %v\n%s", err, out)
	}
}

// TestNodeCredentialsCannotPassForServerOrControlPlane: the server's own
// node is labelled control plane, a joined node cannot label itself so, and
// the join token obtains no serving certificate naming the API server (the
// CA signs both, so it would let a node impersonate the API server).
func TestNodeCredentialsCannotPassForServerOrControlPlane(t *testing.T) {
	s := startLabNode(t)
	if out := s.kubectl("get", "node", s.node, "-o", `jsonpath={.metadata.labels.node-role\.kubernetes\.io/control-plane}`); out != "true" {
		t.Fatalf("server's node control-plane label = %q", out)
	}
	node := uniqueNode("worker")
	a := s.startAgent(node, s.token())
	s.waitNodeReady(node, 60*time.Second)
	tlsDir := filepath.Join(a.dataDir(), "agent", "tls")
	out, err := exec.Command(kubectlPath(t), "--server", s.url(),
		"--certificate-authority", filepath.Join(tlsDir, "ca.crt"),
		"--client-certificate", filepath.Join(tlsDir, "client.crt"),
		"--client-key", filepath.Join(tlsDir, "client.key"),
		"label", "node", node, "node-role.kubernetes.io/control-plane=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Forbidden") {
		t.Fatalf("node labelling itself control plane: %v\n%s", err, out)
	}

	csr, _, err := pki.NewCSR("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(join.Request{NodeName: uniqueNode("evil"), ClientCSR: string(csr), ServingCSR: string(csr),
		ServingDNSNames: []string{"kubernetes.default.svc"}})
	caPEM, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, s.url()+join.NodeCredentialsPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("credentials naming kubernetes.default.svc: %s\n%s", resp.Status, msg)
	}
}
