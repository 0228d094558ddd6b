package authn

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/mizzen-dev/mizzen/internal/pki"
)

const joinSecret = "0123456789abcdef0123456789abcdef"

var bootstrapUser = User{Name: "node-bootstrap", Groups: []string{"system:bootstrappers"}}

func newAuthenticator(t *testing.T) (*Authenticator, *pki.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]User{
		joinSecret: bootstrapUser,
		"admin-tk": {Name: "alice", UID: "42"},
		"":         {Name: "empty"},
	}
	return New(ca.Pool(), tokens), ca, dir
}

func TestAuthenticateBearerToken(t *testing.T) {
	a, ca, _ := newAuthenticator(t)
	full := pki.Token{CAHash: pki.CAHash(ca.CertPEM), Username: "server", Secret: joinSecret}.String()
	wrongSecret := pki.Token{CAHash: pki.CAHash(ca.CertPEM), Username: "server", Secret: "nope"}.String()
	authenticated := []string{"system:bootstrappers", AuthenticatedGroup}
	for _, tc := range []struct {
		name, header string
		want         User
		ok           bool
	}{
		{"bare join secret", "Bearer " + joinSecret, User{Name: "node-bootstrap", Groups: authenticated}, true},
		{"full join token", "Bearer " + full, User{Name: "node-bootstrap", Groups: authenticated}, true},
		{"lower-case scheme", "bearer " + joinSecret, User{Name: "node-bootstrap", Groups: authenticated}, true},
		{"other token", "Bearer admin-tk", User{Name: "alice", UID: "42", Groups: []string{AuthenticatedGroup}}, true},
		{"unknown token", "Bearer wrong", User{}, false},
		{"full token with wrong secret", "Bearer " + wrongSecret, User{}, false},
		{"secret prefix", "Bearer " + joinSecret[:10], User{}, false},
		{"empty bearer", "Bearer ", User{}, false},
		{"basic auth", "Basic " + joinSecret, User{}, false},
		{"no scheme", joinSecret, User{}, false},
		{"no header", "", User{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, ok := a.Authenticate(r)
			if ok != tc.ok || got.Name != tc.want.Name || got.UID != tc.want.UID || !slices.Equal(got.Groups, tc.want.Groups) {
				t.Errorf("Authenticate = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// Adding system:authenticated must not touch the configured user.
	if !slices.Equal(bootstrapUser.Groups, []string{"system:bootstrappers"}) {
		t.Errorf("configured groups changed to %v", bootstrapUser.Groups)
	}
}

func TestAuthenticateCertificateNeedsVerifiedChain(t *testing.T) {
	a, ca, dir := newAuthenticator(t)
	certPEM, keyPEM, err := pki.EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{pair.Leaf}}
	if u, ok := a.Authenticate(r); ok {
		t.Errorf("unverified certificate authenticated as %+v", u)
	}
	r.TLS.VerifiedChains = [][]*x509.Certificate{{pair.Leaf, ca.Cert}}
	u, ok := a.Authenticate(r)
	if !ok || u.Name != "system:admin" || !slices.Equal(u.Groups, []string{"system:masters", AuthenticatedGroup}) {
		t.Errorf("Authenticate = %+v, %v", u, ok)
	}
	// A certificate from another CA is refused even if some other TLS
	// configuration verified it.
	other, err := pki.EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := New(other.Pool(), nil).Authenticate(r); ok {
		t.Errorf("certificate from another CA authenticated as %+v", u)
	}
	if u, ok := New(nil, nil).Authenticate(r); ok {
		t.Errorf("authenticator without a CA accepted a certificate: %+v", u)
	}
}
