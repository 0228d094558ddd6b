package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry a stored leaf is re-issued.
	renewBefore = 90 * 24 * time.Hour
)

// ServingCertBase is the file base (.crt, .key) of the API server's cert.
const ServingCertBase = "serving"

// EnsureServingCert loads serving.crt and serving.key from dir, or issues a
// new pair valid for one year. hosts are the subject alternative names: IP
// addresses go to the IP SANs, anything else to the DNS SANs. The stored
// pair is re-issued when it lacks any of hosts, is not signed by ca, or
// expires within 90 days.
func EnsureServingCert(dir string, ca *CA, hosts []string) (*tls.Certificate, error) {
	ips, names := splitHosts(hosts)
	want := func(cert *x509.Certificate) bool { return hasHosts(cert, ips, names) }
	newTemplate := func() *x509.Certificate {
		t := leafTemplate("kube-apiserver", nil, x509.ExtKeyUsageServerAuth)
		t.IPAddresses, t.DNSNames = ips, names
		return t
	}
	certPEM, keyPEM, err := ensureLeaf(dir, ServingCertBase, ca, x509.ExtKeyUsageServerAuth, want, newTemplate)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	return &pair, nil
}

// EnsurePeerCert loads or issues <base>.crt/.key in dir: a certificate for
// hosts usable both to serve and as a client, as etcd's listeners need
// (peers dial each other with it). It is renewed like EnsureServingCert.
func EnsurePeerCert(dir string, ca *CA, base, commonName string, hosts []string) (certPath, keyPath string, err error) {
	ips, names := splitHosts(hosts)
	want := func(cert *x509.Certificate) bool {
		return slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && hasHosts(cert, ips, names)
	}
	newTemplate := func() *x509.Certificate {
		t := leafTemplate(commonName, nil, x509.ExtKeyUsageServerAuth)
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
		t.IPAddresses, t.DNSNames = ips, names
		return t
	}
	if _, _, err := ensureLeaf(dir, base, ca, x509.ExtKeyUsageServerAuth, want, newTemplate); err != nil {
		return "", "", fmt.Errorf("certificate %s: %w", base, err)
	}
	return filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key"), nil
}

// EnsureClientCert loads <fileBase>.crt and <fileBase>.key from dir, or
// issues a client certificate for commonName (the user name) and orgs (its
// groups), valid for one year. The stored pair is reused while it names the
// same user and groups, is signed by ca and is not within 90 days of expiry.
func EnsureClientCert(dir string, ca *CA, fileBase, commonName string, orgs []string) (certPEM, keyPEM []byte, err error) {
	want := func(cert *x509.Certificate) bool {
		got := slices.Sorted(slices.Values(cert.Subject.Organization))
		exp := slices.Sorted(slices.Values(orgs))
		return cert.Subject.CommonName == commonName && slices.Equal(got, exp)
	}
	newTemplate := func() *x509.Certificate {
		return leafTemplate(commonName, orgs, x509.ExtKeyUsageClientAuth)
	}
	certPEM, keyPEM, err = ensureLeaf(dir, fileBase, ca, x509.ExtKeyUsageClientAuth, want, newTemplate)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate %s: %w", fileBase, err)
	}
	return certPEM, keyPEM, nil
}

// ensureLeaf returns the stored pair <base>.crt/.key when it is still good
// (see usable) and wanted, and otherwise issues and stores a new one.
func ensureLeaf(dir, base string, ca *CA, usage x509.ExtKeyUsage, want func(*x509.Certificate) bool, newTemplate func() *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	if err := ensureDir(dir); err != nil {
		return nil, nil, err
	}
	certPath, keyPath := filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	certPEM, keyPEM, pair := loadLeaf(certPath, keyPath, ca, usage)
	if pair != nil && want(pair.Leaf) {
		return certPEM, keyPEM, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	_, certPEM, err = ca.Sign(newTemplate(), key.Public())
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, certMode); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// loadLeaf reads a stored pair and returns it with its parsed form when the
// key matches the certificate, ca signed it for usage, and it is valid for
// more than renewBefore. Anything unreadable is simply re-issued.
func loadLeaf(certPath, keyPath string, ca *CA, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, pair *tls.Certificate) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, nil
	}
	keyPEM, err = os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, nil
	}
	p, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || p.Leaf == nil {
		return nil, nil, nil
	}
	now := time.Now()
	_, err = p.Leaf.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{usage},
	})
	if err != nil || now.Add(renewBefore).After(p.Leaf.NotAfter) {
		return nil, nil, nil
	}
	return certPEM, keyPEM, &p
}

func leafTemplate(cn string, orgs []string, usage x509.ExtKeyUsage) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
}

// hasHosts reports whether cert names every one of ips and names.
func hasHosts(cert *x509.Certificate, ips []net.IP, names []string) bool {
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, name := range names {
		if !slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return false
		}
	}
	return true
}

// splitHosts sorts hosts into IP addresses and DNS names, dropping empty
// entries and duplicates.
func splitHosts(hosts []string) (ips []net.IP, names []string) {
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
			continue
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, h) }) {
			names = append(names, h)
		}
	}
	return ips, names
}
