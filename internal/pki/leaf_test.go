package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func x509VerifyOpts(ca *CA) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ca, dir
}

var serverHosts = []string{
	"localhost", "127.0.0.1", "node1", "192.168.1.10", "::1",
	"kubernetes", "kubernetes.default", "kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local", "10.43.0.1",
}

func TestEnsureServingCertHasRequestedSANs(t *testing.T) {
	ca, dir := newCA(t)
	pair, err := EnsureServingCert(dir, ca, append(serverHosts, "", "LOCALHOST", "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	wantDNS := []string{"localhost", "node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if !slices.Equal(leaf.DNSNames, wantDNS) {
		t.Errorf("DNSNames = %v, want %v", leaf.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "192.168.1.10", "::1", "10.43.0.1"}; !slices.Equal(ips, want) {
		t.Errorf("IPAddresses = %v, want %v", ips, want)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "kubernetes.default.svc", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("serving cert does not verify: %v", err)
	}
	if days := time.Until(leaf.NotAfter).Hours() / 24; days < 364 || days > 366 {
		t.Errorf("serving cert valid for %.0f days, want 365", days)
	}
	wantMode(t, filepath.Join(dir, "serving.key"), 0o600)
	wantMode(t, filepath.Join(dir, "serving.crt"), 0o644)
}

func TestEnsureServingCertReusesThenReissuesForNewSAN(t *testing.T) {
	ca, dir := newCA(t)
	first, err := EnsureServingCert(dir, ca, serverHosts)
	if err != nil {
		t.Fatal(err)
	}
	// The same hosts, or a subset, keep the stored certificate.
	same, err := EnsureServingCert(dir, ca, serverHosts[:3])
	if err != nil {
		t.Fatal(err)
	}
	if same.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Error("certificate re-issued although no SAN was added")
	}
	added, err := EnsureServingCert(dir, ca, append(serverHosts, "mizzen.example.com", "10.0.0.5"))
	if err != nil {
		t.Fatal(err)
	}
	if added.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("certificate not re-issued for a new SAN")
	}
	if err := added.Leaf.VerifyHostname("mizzen.example.com"); err != nil {
		t.Error(err)
	}
	if !slices.ContainsFunc(added.Leaf.IPAddresses, net.ParseIP("10.0.0.5").Equal) {
		t.Errorf("IPAddresses %v lack 10.0.0.5", added.Leaf.IPAddresses)
	}
}

func TestEnsureServingCertReissuesWhenExpiringSoon(t *testing.T) {
	ca, dir := newCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := leafTemplate("kube-apiserver", nil, x509.ExtKeyUsageServerAuth)
	tmpl.DNSNames = []string{"localhost"}
	tmpl.NotAfter = time.Now().Add(30 * 24 * time.Hour)
	old, certPEM, err := ca.Sign(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeTestPair(t, dir, "serving", certPEM, keyPEM)

	pair, err := EnsureServingCert(dir, ca, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if pair.Leaf.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("certificate expiring in 30 days was kept")
	}
	if time.Until(pair.Leaf.NotAfter) < 300*24*time.Hour {
		t.Errorf("new certificate expires %v", pair.Leaf.NotAfter)
	}
}

func TestEnsureServingCertReissuesForAnotherCA(t *testing.T) {
	ca, dir := newCA(t)
	other, _ := newCA(t)
	if _, err := EnsureServingCert(dir, other, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	pair, err := EnsureServingCert(dir, ca, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509VerifyOpts(ca)); err != nil {
		t.Fatalf("certificate signed by another CA was kept: %v", err)
	}
}

func TestEnsureClientCertReusesAndReissuesOnNewGroups(t *testing.T) {
	ca, dir := newCA(t)
	certPEM, keyPEM, err := EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if s := pair.Leaf.Subject; s.CommonName != "system:admin" || !slices.Equal(s.Organization, []string{"system:masters"}) {
		t.Errorf("subject = %v", s)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := pair.Leaf.Verify(opts); err != nil {
		t.Errorf("client cert does not verify for client auth: %v", err)
	}
	wantMode(t, filepath.Join(dir, "client-admin.key"), 0o600)
	wantMode(t, filepath.Join(dir, "client-admin.crt"), 0o644)

	again, _, err := EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(certPEM) {
		t.Error("valid client certificate was re-issued")
	}
	changed, _, err := EnsureClientCert(dir, ca, "client-admin", "system:admin", []string{"system:masters", "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if string(changed) == string(certPEM) {
		t.Error("client certificate kept although its groups changed")
	}
}

func writeTestPair(t *testing.T, dir, base string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, base+".crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServerTLSConfig(t *testing.T) {
	ca, dir := newCA(t)
	pair, err := EnsureServingCert(dir, ca, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerTLSConfig(pair, ca)
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil {
		t.Errorf("config = min %x, client auth %v, CAs %v", cfg.MinVersion, cfg.ClientAuth, cfg.ClientCAs)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %v", cfg.NextProtos)
	}
}
