package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mizzen-dev/mizzen/internal/atomicfile"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

// Files Join stores in Config.Dir.
const (
	CAFile          = "ca.crt"
	ClientCertFile  = "client.crt"
	ClientKeyFile   = "client.key"
	ServingCertFile = "serving.crt"
	ServingKeyFile  = "serving.key"
)

// renewBefore is how long before expiry stored credentials are replaced.
const renewBefore = 30 * 24 * time.Hour

// requestTimeout bounds each call to the server.
const requestTimeout = 30 * time.Second

// Config is what Join needs.
type Config struct {
	// Server is the API server's URL (https://host:6443).
	Server string
	// Token is the join token, in full K10 form.
	Token    string
	NodeName string
	// Dir keeps the credentials (DATA/agent/tls).
	Dir string
	// ServingIPs and ServingDNSNames go into the kubelet's serving
	// certificate besides the node name.
	ServingIPs      []net.IP
	ServingDNSNames []string
	Log             *logrus.Entry
}

// Credentials are a node's TLS identities.
type Credentials struct {
	CAPEM   []byte
	Client  tls.Certificate
	Serving tls.Certificate
}

// ClientTLS returns the configuration for talking to the API server: the
// CA as the only root and the node's client certificate.
func (c *Credentials) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.pool(), Certificates: []tls.Certificate{c.Client}}
}

// ServingTLS returns the configuration of the kubelet's HTTPS port: its
// serving certificate, and clients must present a certificate the CA
// signed (the API server's kubelet client certificate).
func (c *Credentials) ServingTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.Serving},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.pool(),
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

func (c *Credentials) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CAPEM)
	return pool
}

// Join returns the node's credentials: those stored in cfg.Dir when they
// are for this node and CA and valid for more than 30 days, and otherwise
// new ones from the server, which it stores. It trusts the server only
// after the CA the server sends matches the token's CA hash, and sends the
// token only then.
func Join(ctx context.Context, cfg Config) (*Credentials, error) {
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = logrus.NewEntry(l)
	}
	tok, err := pki.ParseToken(cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if tok.CAHash == "" {
		return nil, errors.New("join: the token is a bare secret without the server's CA hash, so the server " +
			"cannot be verified: use the full K10... token from DATA/server/token on the server")
	}
	if err := pki.ValidateNodeName(cfg.NodeName); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if creds, err := load(cfg, tok.CAHash); err == nil {
		cfg.Log.Debug("using stored node credentials")
		return creds, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		cfg.Log.WithError(err).Info("stored node credentials are not usable, joining again")
	}
	caPEM, err := fetchCA(ctx, cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if !pki.VerifyCAHash(caPEM, tok.CAHash) {
		return nil, fmt.Errorf("join: the server's CA certificate does not match the CA hash in the token "+
			"(server CA hash %s, token CA hash %s): the token is for another server, or %s is not the server it names",
			pki.CAHash(caPEM), tok.CAHash, cfg.Server)
	}
	creds, err := request(ctx, cfg, caPEM)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	cfg.Log.WithField("server", cfg.Server).Info("joined the cluster and stored node credentials")
	return creds, nil
}

// fetchCA gets /cacerts without verifying the server (its CA is not known
// yet) and without any credential.
func fetchCA(ctx context.Context, server string) ([]byte, error) {
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		// The answer is verified against the token's hash instead.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+CACertsPath, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch CA certificate: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch CA certificate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch CA certificate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch CA certificate from %s: %s", server, resp.Status)
	}
	return body, nil
}

// request posts new CSRs with the token over a connection verified
// against caPEM, and stores the result.
func request(ctx context.Context, cfg Config, caPEM []byte) (*Credentials, error) {
	clientCSR, clientKey, err := pki.NewCSR(pki.NodeUserPrefix+cfg.NodeName, []string{pki.NodesGroup})
	if err != nil {
		return nil, err
	}
	servingCSR, servingKey, err := pki.NewCSR(cfg.NodeName, nil)
	if err != nil {
		return nil, err
	}
	body := Request{NodeName: cfg.NodeName, ClientCSR: string(clientCSR), ServingCSR: string(servingCSR), ServingDNSNames: cfg.ServingDNSNames}
	for _, ip := range cfg.ServingIPs {
		body.ServingIPs = append(body.ServingIPs, ip.String())
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.Server, "/")+NodeCredentialsPath, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(cfg.Token))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request node credentials: %w", err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("request node credentials: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("the server refused the join token (401 Unauthorized): check that the token is the one in DATA/server/token on the server")
	default:
		msg := strings.TrimSpace(string(respBody))
		var st struct{ Message string }
		if json.Unmarshal(respBody, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		return nil, fmt.Errorf("request node credentials: the server answered %s: %s", resp.Status, msg)
	}
	var out Response
	if err := json.Unmarshal(respBody, &out); err != nil {
		return nil, fmt.Errorf("request node credentials: decode answer: %w", err)
	}
	if !bytes.Equal([]byte(out.CAPEM), caPEM) {
		return nil, errors.New("request node credentials: the server answered with another CA than it serves at " + CACertsPath)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{ClientKeyFile, clientKey, 0o600},
		{ServingKeyFile, servingKey, 0o600},
		{CAFile, caPEM, 0o644},
		{ClientCertFile, []byte(out.ClientCertPEM), 0o644},
		{ServingCertFile, []byte(out.ServingCertPEM), 0o644},
	}
	creds, err := parse(cfg, caPEM, []byte(out.ClientCertPEM), clientKey, []byte(out.ServingCertPEM), servingKey)
	if err != nil {
		return nil, fmt.Errorf("credentials from the server: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store node credentials: %w", err)
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(cfg.Dir, f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("store node credentials: %w", err)
		}
	}
	return creds, nil
}

// load reads stored credentials; it returns an error wrapping
// os.ErrNotExist when there are none.
func load(cfg Config, caHash string) (*Credentials, error) {
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(cfg.Dir, name)) }
	caPEM, err := read(CAFile)
	if err != nil {
		return nil, err
	}
	if !pki.VerifyCAHash(caPEM, caHash) {
		return nil, fmt.Errorf("stored %s does not match the CA hash in the token", CAFile)
	}
	var parts [4][]byte
	for i, name := range []string{ClientCertFile, ClientKeyFile, ServingCertFile, ServingKeyFile} {
		if parts[i], err = read(name); err != nil {
			return nil, err
		}
	}
	return parse(cfg, caPEM, parts[0], parts[1], parts[2], parts[3])
}

// parse checks that both certificates match their keys, chain to caPEM
// for their usage, name this node, cover the serving IPs and names, and
// stay valid for more than renewBefore.
func parse(cfg Config, caPEM, clientCert, clientKey, servingCert, servingKey []byte) (*Credentials, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in PEM data")
	}
	client, err := checkPair(pool, clientCert, clientKey, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if client.Leaf.Subject.CommonName != pki.NodeUserPrefix+cfg.NodeName || !slices.Contains(client.Leaf.Subject.Organization, pki.NodesGroup) {
		return nil, fmt.Errorf("client certificate is for %q, not node %q", client.Leaf.Subject.CommonName, cfg.NodeName)
	}
	serving, err := checkPair(pool, servingCert, servingKey, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	hosts := append([]string{cfg.NodeName}, cfg.ServingDNSNames...)
	for _, ip := range cfg.ServingIPs {
		hosts = append(hosts, ip.String())
	}
	for _, h := range hosts {
		if !names(serving.Leaf, h) {
			return nil, fmt.Errorf("serving certificate does not name %s", h)
		}
	}
	return &Credentials{CAPEM: caPEM, Client: *client, Serving: *serving}, nil
}

// names reports whether cert lists host (an IP address or a DNS name) among
// its subject alternative names; an empty host is listed by any.
func names(cert *x509.Certificate, host string) bool {
	host = strings.TrimSpace(host)
	if host == "" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return slices.ContainsFunc(cert.IPAddresses, ip.Equal)
	}
	return slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, host) })
}

// FromNodeCerts returns the credentials in certs, which must hold the keys
// (as pki.IssueNodeCerts gives them): the server's own agent uses them
// without joining.
func FromNodeCerts(certs *pki.NodeCerts) (*Credentials, error) {
	client, err := tls.X509KeyPair(certs.ClientCertPEM, certs.ClientKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("node client certificate: %w", err)
	}
	serving, err := tls.X509KeyPair(certs.ServingCertPEM, certs.ServingKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return &Credentials{CAPEM: certs.CAPEM, Client: client, Serving: serving}, nil
}

func checkPair(roots *x509.CertPool, certPEM, keyPEM []byte, usage x509.ExtKeyUsage) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, err
	}
	if now.Add(renewBefore).After(pair.Leaf.NotAfter) {
		return nil, fmt.Errorf("expires at %s", pair.Leaf.NotAfter.Format(time.RFC3339))
	}
	return &pair, nil
}
