// Package pki creates and loads the cluster's certificates, keys, admin
// kubeconfig and join token. Everything lives under a directory the caller
// passes (the server uses DATA/server/tls); keys are written 0600,
// certificates 0644 and directories 0700.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names of the CA inside the directory passed to EnsureCA.
const (
	CACertFile = "server-ca.crt"
	CAKeyFile  = "server-ca.key"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// backdate lets peers whose clocks run a little behind accept new certs.
	backdate = time.Hour
)

// CA is the cluster certificate authority. It signs the API server's
// serving certificate and client certificates.
type CA struct {
	// Cert is the CA certificate that signs; Key is its private key.
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is the CA file exactly as stored. Agents check its SHA-256
	// against the join token, so it must be served byte for byte.
	CertPEM []byte
	// bundle is every certificate in CertPEM (Cert first).
	bundle []*x509.Certificate
}

// EnsureCA loads the CA from dir, or creates a self-signed ECDSA P-256 CA
// valid for 10 years when none exists yet. A CA certificate without its key
// is an error, never silently replaced: replacing it would invalidate every
// issued certificate and join token.
func EnsureCA(dir string) (*CA, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	ok, err := exists(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	if ok {
		return loadCA(certPath, keyPath)
	}
	// No certificate: any key left alone is from an interrupted first start
	// (the key is written first) and has signed nothing, so start over.
	return createCA(certPath, keyPath)
}

func loadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key (the CA certificate %s exists without it): %w", certPath, err)
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w", filepath.Dir(certPath), err)
	}
	return ca, nil
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("CA key does not match CA certificate")
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate expired at %s", cert.NotAfter.Format(time.RFC3339))
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, bundle: certs}, nil
}

func createCA(certPath, keyPath string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA key: %w", err)
	}
	now := time.Now()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("mizzen-server-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := encodeCert(der)
	if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, certMode); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM)
}

// Pool returns a new pool holding the CA certificates, for verifying peers.
func (c *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, cert := range c.bundle {
		pool.AddCert(cert)
	}
	return pool
}

// Sign issues a certificate for pub from tmpl. A nil SerialNumber gets a
// random one, and NotAfter is capped at the CA's own expiry. It returns the
// parsed certificate and its PEM encoding.
func (c *CA) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, []byte, error) {
	t := *tmpl
	if t.SerialNumber == nil {
		serial, err := randomSerial()
		if err != nil {
			return nil, nil, err
		}
		t.SerialNumber = serial
	}
	if t.NotAfter.After(c.Cert.NotAfter) {
		t.NotAfter = c.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, &t, c.Cert, pub, c.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate %q: %w", t.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate %q: %w", t.Subject.CommonName, err)
	}
	return cert, encodeCert(der), nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCerts returns every certificate in a PEM bundle, in order.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate found in PEM data")
	}
	return certs, nil
}

// parseKey accepts PKCS#8, SEC 1 (EC) and PKCS#1 (RSA) private keys, so a
// CA provided by the operator loads too.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key found in PEM data")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return signer, nil
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}
