package pki

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const testHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Token
		wantErr bool
	}{
		{in: "K10" + testHash + "::server:s3cret\n", want: Token{CAHash: testHash, Username: "server", Secret: "s3cret"}},
		{in: "K10" + strings.ToUpper(testHash) + "::node:a:b", want: Token{CAHash: testHash, Username: "node", Secret: "a:b"}},
		{in: "s3cret", want: Token{Username: "server", Secret: "s3cret"}},
		{in: "K10short", want: Token{Username: "server", Secret: "K10short"}},
		{in: "", wantErr: true},
		{in: "  \n", wantErr: true},
		{in: "two words", wantErr: true},
		{in: "K10" + testHash, wantErr: true},
		{in: "K10nothex::server:s3cret", wantErr: true},
		{in: "K10" + testHash + "::server:", wantErr: true},
		{in: "K10" + testHash + "::s3cret", wantErr: true},
		{in: "K10" + testHash + ":::s3cret", wantErr: true},
	} {
		got, err := ParseToken(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestTokenStringRoundTrips(t *testing.T) {
	for _, tok := range []Token{
		{CAHash: testHash, Username: "server", Secret: "abc"},
		{CAHash: testHash, Username: "server", Secret: "with:colon"},
		{Username: "server", Secret: "bare"},
	} {
		got, err := ParseToken(tok.String())
		if err != nil || got != tok {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v", tok.String(), got, err, tok)
		}
	}
}

func TestEnsureTokenGeneratesAndReloads(t *testing.T) {
	ca, _ := newCA(t)
	path := filepath.Join(t.TempDir(), "server", "token")
	tok, err := EnsureToken(path, "", ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok.Secret) || tok.Username != "server" {
		t.Errorf("generated token %+v", tok)
	}
	if !strings.HasPrefix(tok.String(), "K10"+CAHash(ca.CertPEM)+"::server:") {
		t.Errorf("token %q lacks the CA hash", tok)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != tok.String()+"\n" {
		t.Errorf("token file holds %q, want %q", data, tok.String())
	}
	wantMode(t, path, 0o600)

	again, err := EnsureToken(path, "", ca.CertPEM)
	if err != nil || again != tok {
		t.Errorf("second EnsureToken = %+v, %v; want %+v", again, err, tok)
	}
}

func TestEnsureTokenWrapsGivenSecret(t *testing.T) {
	ca, _ := newCA(t)
	path := filepath.Join(t.TempDir(), "token")
	tok, err := EnsureToken(path, "my-secret", ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	want := Token{CAHash: CAHash(ca.CertPEM), Username: "server", Secret: "my-secret"}
	if tok != want {
		t.Errorf("token = %+v, want %+v", tok, want)
	}
	// The full token printed by this server is accepted back.
	full, err := EnsureToken(path, tok.String(), ca.CertPEM)
	if err != nil || full != want {
		t.Errorf("EnsureToken(full) = %+v, %v", full, err)
	}
}

func TestEnsureTokenRefusesAnotherCAsHash(t *testing.T) {
	ca, _ := newCA(t)
	other, _ := newCA(t)
	path := filepath.Join(t.TempDir(), "token")
	given := Token{CAHash: CAHash(other.CertPEM), Username: "server", Secret: "s3cret"}.String()
	_, err := EnsureToken(path, given, ca.CertPEM)
	if err == nil || !strings.Contains(err.Error(), CAHash(ca.CertPEM)) || !strings.Contains(err.Error(), CAHash(other.CertPEM)) {
		t.Fatalf("EnsureToken with another CA's token: err = %v", err)
	}
	if _, statErr := os.Stat(path); statErr == nil {
		t.Error("a refused token was stored")
	}
	// A stored token from a previous CA is refused the same way.
	if err := os.WriteFile(path, []byte(given+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureToken(path, "", ca.CertPEM); err == nil {
		t.Fatal("EnsureToken accepted a stored token for another CA")
	}
}

func TestVerifyCAHash(t *testing.T) {
	ca, _ := newCA(t)
	hash := CAHash(ca.CertPEM)
	if !VerifyCAHash(ca.CertPEM, hash) || !VerifyCAHash(ca.CertPEM, strings.ToUpper(hash)) {
		t.Error("VerifyCAHash refused the CA's own hash")
	}
	if VerifyCAHash(ca.CertPEM, testHash) || VerifyCAHash(ca.CertPEM, "") || VerifyCAHash(append(ca.CertPEM, '\n'), hash) {
		t.Error("VerifyCAHash accepted a wrong hash")
	}
}
