// Package authn authenticates API requests: by a client certificate signed
// by the cluster CA, or by a bearer token from a fixed table.
package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/mizzen-dev/mizzen/internal/pki"
)

// AuthenticatedGroup is added to every authenticated user's groups, as
// Kubernetes does.
const AuthenticatedGroup = "system:authenticated"

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
	UID    string
}

// Authenticator authenticates requests. It is immutable and safe for
// concurrent use.
type Authenticator struct {
	ca     *x509.CertPool
	tokens []tokenEntry
}

// tokenEntry keeps a token's SHA-256 rather than the token, so every
// comparison is between equal-length values and takes the same time.
type tokenEntry struct {
	sum  [sha256.Size]byte
	user User
}

// New returns an Authenticator that accepts client certificates signed by
// ca (nil disables them) and the bearer tokens in tokens, each mapped to the
// user it authenticates. Empty tokens are ignored.
func New(ca *x509.CertPool, tokens map[string]User) *Authenticator {
	a := &Authenticator{ca: ca}
	for tok, u := range tokens {
		if tok == "" {
			continue
		}
		a.tokens = append(a.tokens, tokenEntry{sum: sha256.Sum256([]byte(tok)), user: u})
	}
	return a
}

// Authenticate returns the user a request authenticates as, trying first a
// client certificate and then an "Authorization: Bearer" token.
//
// A client certificate counts when the TLS handshake verified it
// (r.TLS.VerifiedChains is non-empty) and it also verifies against this
// Authenticator's CA for client authentication; its common name is the user
// name and its organizations are the groups.
//
// A bearer token is compared, in constant time, with every configured
// token. A bearer token in the full join token form K10<ca-hash>::<user>:
// <secret> also matches a configured token equal to its secret part: the
// secret is the credential, while the CA hash is for the client to check the
// server, so agents may send the join token exactly as they were given it.
func (a *Authenticator) Authenticate(r *http.Request) (User, bool) {
	if u, ok := a.authenticateCert(r); ok {
		return u, true
	}
	return a.authenticateToken(r)
}

func (a *Authenticator) authenticateCert(r *http.Request) (User, bool) {
	if a.ca == nil || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return User{}, false
	}
	leaf := r.TLS.PeerCertificates[0]
	opts := x509.VerifyOptions{
		Roots:         a.ca,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range r.TLS.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil || leaf.Subject.CommonName == "" {
		return User{}, false
	}
	groups := append([]string(nil), leaf.Subject.Organization...)
	return User{Name: leaf.Subject.CommonName, Groups: withAuthenticated(groups)}, true
}

func (a *Authenticator) authenticateToken(r *http.Request) (User, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return User{}, false
	}
	if u, ok := a.lookup(token); ok {
		return u, true
	}
	if t, err := pki.ParseToken(token); err == nil && t.CAHash != "" {
		return a.lookup(t.Secret)
	}
	return User{}, false
}

// lookup compares token with every entry, without stopping at a match.
func (a *Authenticator) lookup(token string) (User, bool) {
	sum := sha256.Sum256([]byte(token))
	var (
		found bool
		user  User
	)
	for _, e := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found, user = true, e.user
		}
	}
	if !found {
		return User{}, false
	}
	user.Groups = withAuthenticated(append([]string(nil), user.Groups...))
	return user, true
}

func withAuthenticated(groups []string) []string {
	for _, g := range groups {
		if g == AuthenticatedGroup {
			return groups
		}
	}
	return append(groups, AuthenticatedGroup)
}
