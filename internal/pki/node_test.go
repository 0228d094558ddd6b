package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"testing"
)

func TestNodeName(t *testing.T) {
	for _, tc := range []struct {
		user   string
		groups []string
		want   string
		ok     bool
	}{
		{"system:node:a", []string{NodesGroup, "system:authenticated"}, "a", true},
		{"system:node:a", []string{"system:authenticated"}, "", false},
		{"system:node:", []string{NodesGroup}, "", false},
		{"alice", []string{NodesGroup}, "", false},
		{"system:nodes:a", []string{NodesGroup}, "", false},
	} {
		got, ok := NodeName(tc.user, tc.groups)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NodeName(%q, %v) = %q, %v; want %q, %v", tc.user, tc.groups, got, ok, tc.want, tc.ok)
		}
	}
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	certs, err := parseCerts(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func verifyFor(t *testing.T, ca *CA, cert *x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("certificate %q does not verify for usage %v: %v", cert.Subject.CommonName, usage, err)
	}
}

func TestIssueNodeCertsNamesTheNode(t *testing.T) {
	ca, err := EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP("10.0.0.7")
	certs, err := IssueNodeCerts(ca, "worker-1", []net.IP{ip}, []string{"worker-1.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if string(certs.CAPEM) != string(ca.CertPEM) {
		t.Error("CAPEM is not the CA's PEM")
	}
	if _, err := tls.X509KeyPair(certs.ClientCertPEM, certs.ClientKeyPEM); err != nil {
		t.Errorf("client pair: %v", err)
	}
	if _, err := tls.X509KeyPair(certs.ServingCertPEM, certs.ServingKeyPEM); err != nil {
		t.Errorf("serving pair: %v", err)
	}
	client := parseCertPEM(t, certs.ClientCertPEM)
	if client.Subject.CommonName != "system:node:worker-1" || !slices.Equal(client.Subject.Organization, []string{NodesGroup, ControlPlaneNodesGroup}) {
		t.Errorf("client subject = %v", client.Subject)
	}
	verifyFor(t, ca, client, x509.ExtKeyUsageClientAuth)
	serving := parseCertPEM(t, certs.ServingCertPEM)
	verifyFor(t, ca, serving, x509.ExtKeyUsageServerAuth)
	if serving.Subject.CommonName != "worker-1" {
		t.Errorf("serving CN = %q", serving.Subject.CommonName)
	}
	for _, h := range []string{"worker-1", "worker-1.example.com", "10.0.0.7"} {
		if err := serving.VerifyHostname(h); err != nil {
			t.Errorf("serving certificate: %v", err)
		}
	}
	if got := serving.NotAfter.Sub(serving.NotBefore); got < leafValidity {
		t.Errorf("serving certificate valid for %v", got)
	}
}

func TestSignNodeCSRsIgnoresRequestedSubject(t *testing.T) {
	ca, err := EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The CSR asks to be an administrator; the certificate names the node.
	clientCSR, _, err := NewCSR("system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	servingCSR, _, err := NewCSR("kube-apiserver", nil)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := SignNodeCSRs(ca, "a", clientCSR, servingCSR, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := parseCertPEM(t, certs.ClientCertPEM)
	if client.Subject.CommonName != "system:node:a" || !slices.Equal(client.Subject.Organization, []string{NodesGroup}) {
		t.Errorf("client subject = %v", client.Subject)
	}
	if certs.ClientKeyPEM != nil || certs.ServingKeyPEM != nil {
		t.Error("SignNodeCSRs returned keys")
	}

	block, _ := pem.Decode(clientCSR)
	block.Bytes[len(block.Bytes)-3] ^= 0xff // break the signature
	tampered := pem.EncodeToMemory(block)
	for _, tc := range []struct {
		name, node      string
		client, serving []byte
	}{
		{"invalid node name", "Not_A_Name", clientCSR, servingCSR},
		{"empty node name", "", clientCSR, servingCSR},
		{"not a CSR", "a", certs.ClientCertPEM, servingCSR},
		{"garbage", "a", clientCSR, []byte("nope")},
		{"bad signature", "a", tampered, servingCSR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SignNodeCSRs(ca, tc.node, tc.client, tc.serving, nil, nil); err == nil {
				t.Error("SignNodeCSRs succeeded")
			}
		})
	}
}
