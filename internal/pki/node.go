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
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Node identities, as Kubernetes names them: a node authenticates as the
// user system:node:<name> in the group system:nodes.
const (
	NodesGroup     = "system:nodes"
	NodeUserPrefix = "system:node:"
)

// ControlPlaneNodesGroup is an extra group in the client certificate of a
// server's own node (IssueNodeCerts): such a node may label itself with
// node-role.kubernetes.io labels, which joined nodes may not.
const ControlPlaneNodesGroup = "mizzen:control-plane-nodes"

// KubeletClientCertBase, KubeletClientUser and KubeletClientGroup describe
// the client certificate the API server presents to kubelets.
const (
	KubeletClientCertBase = "client-kube-apiserver-kubelet-client"
	KubeletClientUser     = "kube-apiserver-kubelet-client"
	KubeletClientGroup    = "system:masters"
)

// NodeName returns the node a user is, when the user is a node: its name is
// system:node:<name> and system:nodes is among its groups.
func NodeName(user string, groups []string) (string, bool) {
	name, ok := strings.CutPrefix(user, NodeUserPrefix)
	if !ok || name == "" {
		return "", false
	}
	for _, g := range groups {
		if g == NodesGroup {
			return name, true
		}
	}
	return "", false
}

// ValidateNodeName returns an error unless name is a DNS-1123 subdomain,
// as Node names must be.
func ValidateNodeName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("invalid node name %q: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

// NodeCerts are a node's certificates in PEM: a client certificate for
// system:node:<name>, a kubelet serving certificate, their keys when the
// signer generated them, and the CA that signed both.
type NodeCerts struct {
	CAPEM          []byte
	ClientCertPEM  []byte
	ClientKeyPEM   []byte
	ServingCertPEM []byte
	ServingKeyPEM  []byte
}

// IssueNodeCerts generates keys and signs both node certificates directly,
// for the server's own agent, which needs no join; its client certificate
// is also in ControlPlaneNodesGroup.
func IssueNodeCerts(ca *CA, nodeName string, ips []net.IP, dnsNames []string) (*NodeCerts, error) {
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node client key: %w", err)
	}
	servingKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate kubelet serving key: %w", err)
	}
	out, err := signNode(ca, nodeName, []string{NodesGroup, ControlPlaneNodesGroup}, clientKey.Public(), servingKey.Public(), ips, dnsNames)
	if err != nil {
		return nil, err
	}
	if out.ClientKeyPEM, err = encodeKey(clientKey); err != nil {
		return nil, err
	}
	if out.ServingKeyPEM, err = encodeKey(servingKey); err != nil {
		return nil, err
	}
	return out, nil
}

// SignNodeCSRs signs a node's client and serving certificate requests. The
// requests supply only their public keys (their signatures are checked):
// the subjects and names come from nodeName, ips and dnsNames, so a
// request cannot ask for another identity. The returned NodeCerts has no
// keys.
func SignNodeCSRs(ca *CA, nodeName string, clientCSR, servingCSR []byte, ips []net.IP, dnsNames []string) (*NodeCerts, error) {
	clientPub, err := csrPublicKey(clientCSR)
	if err != nil {
		return nil, fmt.Errorf("client CSR: %w", err)
	}
	servingPub, err := csrPublicKey(servingCSR)
	if err != nil {
		return nil, fmt.Errorf("serving CSR: %w", err)
	}
	return signNode(ca, nodeName, []string{NodesGroup}, clientPub, servingPub, ips, dnsNames)
}

func signNode(ca *CA, nodeName string, groups []string, clientPub, servingPub crypto.PublicKey, ips []net.IP, dnsNames []string) (*NodeCerts, error) {
	if err := ValidateNodeName(nodeName); err != nil {
		return nil, err
	}
	_, clientPEM, err := ca.Sign(leafTemplate(NodeUserPrefix+nodeName, groups, x509.ExtKeyUsageClientAuth), clientPub)
	if err != nil {
		return nil, err
	}
	tmpl := leafTemplate(nodeName, nil, x509.ExtKeyUsageServerAuth)
	hosts := append([]string{nodeName}, dnsNames...)
	for _, ip := range ips {
		hosts = append(hosts, ip.String())
	}
	tmpl.IPAddresses, tmpl.DNSNames = splitHosts(hosts)
	_, servingPEM, err := ca.Sign(tmpl, servingPub)
	if err != nil {
		return nil, err
	}
	return &NodeCerts{CAPEM: ca.CertPEM, ClientCertPEM: clientPEM, ServingCertPEM: servingPEM}, nil
}

// NewCSR generates an ECDSA P-256 key and a certificate request for
// commonName and orgs signed with it, both PEM encoded.
func NewCSR(commonName string, orgs []string) (csrPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName, Organization: orgs},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), keyPEM, nil
}

// csrPublicKey parses a PEM certificate request, checks its signature and
// returns its public key.
func csrPublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no CERTIFICATE REQUEST found in PEM data")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr.PublicKey, nil
}
