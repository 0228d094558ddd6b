package authn

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/mizzen-dev/mizzen/internal/pki"
)

// unauthorized is the body kube-apiserver sends with a 401.
const unauthorized = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}` + "\n"

// whoami answers with the user in the request context, and the
// Authorization header the handler saw.
func whoami(w http.ResponseWriter, r *http.Request) {
	u, ok := UserFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"user": u, "ok": ok, "authorization": r.Header.Get("Authorization"), "proto": r.Proto,
	})
}

type whoamiResponse struct {
	User          User
	OK            bool
	Authorization string
	Proto         string
}

func TestPublic(t *testing.T) {
	for path, want := range map[string]bool{
		"/healthz": true, "/livez": true, "/readyz": true, "/version": true,
		"/readyz/etcd": true, "/healthz/ping": true, "/livez/": true,
		"/": false, "": false, "/api": false, "/apis": false, "/version/x": false,
		"/healthzx": false, "/readyzz/etcd": false, "/api/v1/healthz": false,
		"/readyz/../api/v1/secrets": false, "/readyz/./etcd": false, "//readyz": false,
	} {
		if got := Public(path); got != want {
			t.Errorf("Public(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestMiddleware(t *testing.T) {
	a, _, _ := newAuthenticator(t)
	h := Middleware(a, Public)(http.HandlerFunc(whoami))
	for _, tc := range []struct {
		name, path, header string
		code               int
		user               string
	}{
		{"token on protected path", "/api/v1/pods", "Bearer " + joinSecret, 200, "node-bootstrap"},
		{"nothing on protected path", "/api/v1/pods", "", 401, ""},
		{"bad token on protected path", "/api/v1/pods", "Bearer bad", 401, ""},
		{"nothing on public path", "/readyz/etcd", "", 200, ""},
		{"token on public path", "/version", "Bearer admin-tk", 200, "alice"},
		{"bad token on public path", "/healthz", "Bearer bad", 401, ""},
		{"dot-dot out of a public path", "/readyz/../api/v1/secrets", "", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example"+tc.path, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("code = %d, want %d", w.Code, tc.code)
			}
			if tc.code == 401 {
				checkUnauthorized(t, w.Result())
				return
			}
			var got whoamiResponse
			if err := json.NewDecoder(w.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.User.Name != tc.user || got.OK != (tc.user != "") || got.Authorization != "" {
				t.Errorf("handler saw %+v", got)
			}
			if r.Header.Get("Authorization") != tc.header {
				t.Error("middleware changed the caller's request headers")
			}
		})
	}
}

func checkUnauthorized(t *testing.T, resp *http.Response) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if string(body) != unauthorized {
		t.Errorf("body = %q\nwant   %q", body, unauthorized)
	}
}

// TestTLSLoopback runs the middleware behind a real TLS listener configured
// by pki, as the API server will.
func TestTLSLoopback(t *testing.T) {
	a, ca, dir := newAuthenticator(t)
	serving, err := pki.EnsureServingCert(dir, ca, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pki.EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Middleware(a, Public)(http.HandlerFunc(whoami)))
	srv.TLS = pki.ServerTLSConfig(serving, ca)
	srv.Config.ErrorLog = log.New(t.Output(), "server: ", 0)
	srv.StartTLS()
	defer srv.Close()

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), Certificates: certs},
			ForceAttemptHTTP2: true,
		}}
	}
	get := func(c *http.Client, path, token string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return c.Do(req)
	}
	decode := func(resp *http.Response) whoamiResponse {
		t.Helper()
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var got whoamiResponse
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("admin client certificate", func(t *testing.T) {
		resp, err := get(client(admin), "/api", "")
		if err != nil {
			t.Fatal(err)
		}
		got := decode(resp)
		if got.User.Name != "system:admin" || !slices.Equal(got.User.Groups, []string{"system:masters", AuthenticatedGroup}) {
			t.Errorf("user = %+v", got.User)
		}
		if got.Proto != "HTTP/2.0" {
			t.Errorf("protocol = %s, want HTTP/2.0", got.Proto)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		resp, err := get(client(), "/api", "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		checkUnauthorized(t, resp)
	})
	t.Run("public path without credentials", func(t *testing.T) {
		resp, err := get(client(), "/readyz", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(resp); got.OK {
			t.Errorf("anonymous request carried user %+v", got.User)
		}
	})
	t.Run("join token", func(t *testing.T) {
		full := pki.Token{CAHash: pki.CAHash(ca.CertPEM), Username: "server", Secret: joinSecret}.String()
		resp, err := get(client(), "/api", full)
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(resp); got.User.Name != "node-bootstrap" {
			t.Errorf("user = %+v", got.User)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		otherDir := t.TempDir()
		other, err := pki.EnsureCA(otherDir)
		if err != nil {
			t.Fatal(err)
		}
		c, k, err := pki.EnsureClientCert(otherDir, other, "client-admin", "system:admin", []string{"system:masters"})
		if err != nil {
			t.Fatal(err)
		}
		forged, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		// Offer the certificate whatever CAs the server asks for: a client
		// offers by default only one whose issuer name the server lists.
		hc := client()
		hc.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &forged, nil
		}
		if resp, err := get(hc, "/api", ""); err == nil {
			resp.Body.Close()
			t.Fatalf("request with a foreign client certificate got %s, want a TLS error", resp.Status)
		}
	})
}
