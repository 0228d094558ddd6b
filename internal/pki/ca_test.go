package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %#o, want %#o", path, got, want)
	}
}

func TestEnsureCACreatesThenReloadsSameCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server", "tls")
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || !strings.HasPrefix(ca.Cert.Subject.CommonName, "mizzen-server-ca@") {
		t.Errorf("CA subject %q IsCA=%v", ca.Cert.Subject.CommonName, ca.Cert.IsCA)
	}
	if years := time.Until(ca.Cert.NotAfter).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid for %.1f years, want 10", years)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, CAKeyFile), 0o600)
	wantMode(t, filepath.Join(dir, CACertFile), 0o644)

	again, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(ca.Key.Public(), again.Key.Public()) {
		t.Error("second EnsureCA returned a different key")
	}
	if !bytes.Equal(ca.CertPEM, again.CertPEM) {
		t.Error("second EnsureCA returned a different certificate")
	}
	if _, err := ca.Cert.Verify(x509VerifyOpts(again)); err != nil {
		t.Errorf("CA does not verify against its own pool: %v", err)
	}
}

func TestEnsureCATightensExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
}

func TestEnsureCARefusesCertificateWithoutKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(dir); err == nil {
		t.Fatal("EnsureCA succeeded with the CA key missing")
	}
}

func TestEnsureCAReplacesKeyLeftWithoutCertificate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(dir); err != nil {
		t.Fatalf("EnsureCA after an interrupted first start: %v", err)
	}
}

func TestEnsureCARefusesMismatchedKey(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(other); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(other, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("EnsureCA with another CA's key: err = %v", err)
	}
}
