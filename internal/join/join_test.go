package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

const secret = "0123456789abcdef0123456789abcdef"

// testServer is the server side of joining over real TLS with a real CA:
// the authentication middleware, the join routes, and a record of the
// Authorization headers that reached it.
type testServer struct {
	*httptest.Server
	ca *pki.CA

	mu sync.Mutex // guards seen
	// seen are "METHOD path Authorization" of every request.
	seen []string
}

func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(t.Output())
	return logrus.NewEntry(l).WithField("component", "join")
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.EnsureServingCert(dir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{ca: ca}
	r := chi.NewRouter()
	r.Use(authn.Middleware(authn.New(ca.Pool(), map[string]authn.User{
		secret:   {Name: "node-bootstrap", Groups: []string{BootstrapGroup}},
		"alices": {Name: "alice"},
	}), Public))
	NewHandler(ca, testLog(t), "10.43.0.1", "Server.Example.com", "127.0.0.1", "localhost").Mount(r)
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ts.mu.Lock()
		ts.seen = append(ts.seen, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization"))
		ts.mu.Unlock()
		r.ServeHTTP(w, req)
	}))
	ts.TLS = pki.ServerTLSConfig(cert, ca)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) requests() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.seen...)
}

func (ts *testServer) token() string {
	return pki.Token{CAHash: pki.CAHash(ts.ca.CertPEM), Username: pki.TokenUsername, Secret: secret}.String()
}

func (ts *testServer) config(t *testing.T, dir string) Config {
	return Config{Server: ts.URL, Token: ts.token(), NodeName: "node-a", Dir: dir,
		ServingIPs: []net.IP{net.ParseIP("10.1.2.3")}, ServingDNSNames: []string{"node-a.lan"}, Log: testLog(t)}
}

func TestJoinWithTokenStoresCredentials(t *testing.T) {
	ts := newTestServer(t)
	dir := filepath.Join(t.TempDir(), "tls")
	creds, err := Join(t.Context(), ts.config(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(creds.CAPEM, ts.ca.CertPEM) {
		t.Error("CAPEM is not the server's CA")
	}
	if got := creds.Client.Leaf.Subject.CommonName; got != "system:node:node-a" {
		t.Errorf("client CN = %q", got)
	}
	for _, h := range []string{"node-a", "node-a.lan", "10.1.2.3"} {
		if err := creds.Serving.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, ClientCertFile: 0o644, ClientKeyFile: 0o600, ServingCertFile: 0o644, ServingKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	// /cacerts was fetched without the secret, the credentials with it.
	want := []string{"GET /cacerts ", "POST " + NodeCredentialsPath + " Bearer " + ts.token()}
	if got := ts.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("server saw\n%q\nwant\n%q", got, want)
	}

	// The client certificate authenticates as the node: it may renew its
	// own credentials but not obtain another node's.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: creds.ClientTLS()}}
	defer client.CloseIdleConnections()
	for node, code := range map[string]int{"node-a": http.StatusOK, "node-b": http.StatusForbidden} {
		if got := postCredentials(t, client, ts.URL, node); got != code {
			t.Errorf("node-a asking for %s: status %d, want %d", node, got, code)
		}
	}
}

func postCredentials(t *testing.T, client *http.Client, server, node string) int {
	t.Helper()
	clientCSR, _, err := pki.NewCSR("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(Request{NodeName: node, ClientCSR: string(clientCSR), ServingCSR: string(clientCSR)})
	resp, err := client.Post(server+NodeCredentialsPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestJoinRefusesWrongCAHashBeforeSendingSecret(t *testing.T) {
	ts := newTestServer(t)
	other, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ts.config(t, t.TempDir())
	cfg.Token = pki.Token{CAHash: pki.CAHash(other.CertPEM), Username: pki.TokenUsername, Secret: secret}.String()
	_, err = Join(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "does not match the CA hash in the token") {
		t.Fatalf("Join = %v, want a CA hash mismatch", err)
	}
	for _, r := range ts.requests() {
		if r != "GET /cacerts " {
			t.Errorf("server saw %q", r)
		}
	}
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) != 0 {
		t.Errorf("Join stored %d files", len(entries))
	}
}

// A server that relays the real CA at /cacerts but holds a certificate
// another CA signed (a man in the middle) fails TLS verification before
// the secret is sent, with an error the agent does not retry.
func TestJoinRefusesServerTheCADidNotSign(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	other, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.EnsureServingCert(dir, other, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	mitm := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write(ts.ca.CertPEM)
	}))
	mitm.TLS = pki.ServerTLSConfig(cert, other)
	mitm.StartTLS()
	defer mitm.Close()
	cfg := ts.config(t, t.TempDir())
	cfg.Server = mitm.URL
	_, err = Join(t.Context(), cfg)
	var untrusted *tls.CertificateVerificationError
	if !errors.As(err, &untrusted) {
		t.Fatalf("Join = %v, want a certificate verification error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "GET /cacerts " {
		t.Errorf("server saw %q, want only GET /cacerts without credentials", seen)
	}
}

func TestJoinRefusals(t *testing.T) {
	ts := newTestServer(t)
	wrongSecret := pki.Token{CAHash: pki.CAHash(ts.ca.CertPEM), Username: pki.TokenUsername, Secret: "not-the-secret"}.String()
	for _, tc := range []struct {
		name, token, node, want string
	}{
		{"wrong secret", wrongSecret, "node-a", "server refused the join token (401"},
		{"bare secret", secret, "node-a", "use the full K10"},
		{"invalid node name", ts.token(), "Node_A", "invalid node name"},
		{"empty token", "", "node-a", "token is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ts.config(t, t.TempDir())
			cfg.Token, cfg.NodeName = tc.token, tc.node
			if _, err := Join(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Join = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestJoinReusesStoredCredentials(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	cfg := ts.config(t, dir)
	first, err := Join(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Close() // reuse must not need the server
	again, err := Join(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Client.Leaf.SerialNumber.Cmp(first.Client.Leaf.SerialNumber) != 0 {
		t.Error("stored client certificate was not reused")
	}

	// Stored credentials for another node, another CA or without a
	// needed serving IP are not reused: Join goes to the (gone) server.
	other, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Config){
		"other node": func(c *Config) { c.NodeName = "node-b" },
		"other CA": func(c *Config) {
			c.Token = pki.Token{CAHash: pki.CAHash(other.CertPEM), Username: pki.TokenUsername, Secret: secret}.String()
		},
		"new serving IP": func(c *Config) { c.ServingIPs = append(c.ServingIPs, net.ParseIP("10.9.9.9")) },
	} {
		t.Run(name, func(t *testing.T) {
			c := cfg
			change(&c)
			if _, err := Join(t.Context(), c); err == nil || !strings.Contains(err.Error(), "fetch CA certificate") {
				t.Errorf("Join = %v, want it to contact the server", err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	ts := newTestServer(t)
	pool := ts.ca.Pool()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()

	resp, err := client.Get(ts.URL + CACertsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, ts.ca.CertPEM) {
		t.Errorf("GET /cacerts = %d, body equal to the CA PEM: %v", resp.StatusCode, bytes.Equal(body, ts.ca.CertPEM))
	}

	csr, _, err := pki.NewCSR("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := json.Marshal(Request{NodeName: "node-a", ClientCSR: string(csr), ServingCSR: string(csr), ServingIPs: []string{"10.0.0.1"}})
	badIP, _ := json.Marshal(Request{NodeName: "node-a", ClientCSR: string(csr), ServingCSR: string(csr), ServingIPs: []string{"nope"}})
	badName, _ := json.Marshal(Request{NodeName: "-a-", ClientCSR: string(csr), ServingCSR: string(csr)})
	serving := func(node string, ips []string, names ...string) []byte {
		b, _ := json.Marshal(Request{NodeName: node, ClientCSR: string(csr), ServingCSR: string(csr), ServingIPs: ips, ServingDNSNames: names})
		return b
	}
	for _, tc := range []struct {
		name, auth string
		body       []byte
		code       int
	}{
		{"bootstrap token", "Bearer " + secret, valid, http.StatusOK},
		{"full join token", "Bearer " + ts.token(), valid, http.StatusOK},
		{"no credential", "", valid, http.StatusUnauthorized},
		{"wrong token", "Bearer wrong", valid, http.StatusUnauthorized},
		{"other user", "Bearer alices", valid, http.StatusForbidden},
		{"bad IP", "Bearer " + secret, badIP, http.StatusBadRequest},
		{"bad node name", "Bearer " + secret, badName, http.StatusBadRequest},
		{"not JSON", "Bearer " + secret, []byte("{"), http.StatusBadRequest},
		// The CA signs the API server's certificate too: a node must not
		// obtain one that passes for the API server.
		{"API server's service IP", "Bearer " + secret, serving("node-a", []string{"10.43.0.1"}), http.StatusForbidden},
		{"API server's name", "Bearer " + secret, serving("node-a", nil, "server.example.COM."), http.StatusForbidden},
		{"kubernetes service name", "Bearer " + secret, serving("node-a", nil, "kubernetes.default.svc.cluster.local"), http.StatusForbidden},
		{"node named kubernetes", "Bearer " + secret, serving("kubernetes", nil), http.StatusForbidden},
		{"wildcard name", "Bearer " + secret, serving("node-a", nil, "*.example.com"), http.StatusForbidden},
		{"loopback names", "Bearer " + secret, serving("node-a", []string{"127.0.0.1", "::1"}, "localhost"), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, ts.URL+NodeCredentialsPath, bytes.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.code, got)
			}
			if tc.code != http.StatusOK && (got["kind"] != "Status" || got["code"] != float64(tc.code)) {
				t.Errorf("body is not a Status with code %d: %v", tc.code, got)
			}
		})
	}
}
