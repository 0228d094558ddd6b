package join

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mizzen-dev/mizzen/internal/pki"
)

// TestServingTLSRequiresClientCertificate serves with a node's ServingTLS,
// as the kubelet does, and calls it with the API server's kubelet client
// certificate, with none, and trusting the node's CA via ClientTLS.
func TestServingTLSRequiresClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.IssueNodeCerts(ca, "node-a", []net.IP{net.ParseIP("127.0.0.1")}, []string{"", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := FromNodeCerts(certs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parse(Config{NodeName: "node-a", ServingIPs: []net.IP{net.ParseIP("127.0.0.1")}, ServingDNSNames: []string{"", "LOCALHOST"}},
		certs.CAPEM, certs.ClientCertPEM, certs.ClientKeyPEM, certs.ServingCertPEM, certs.ServingKeyPEM); err != nil {
		t.Errorf("issued certificates do not check: %v", err)
	}
	kubelet := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	kubelet.TLS = creds.ServingTLS()
	kubelet.StartTLS()
	defer kubelet.Close()

	apiCert, apiKey, err := pki.EnsureClientCert(dir, ca, pki.KubeletClientCertBase, pki.KubeletClientUser, []string{pki.KubeletClientGroup})
	if err != nil {
		t.Fatal(err)
	}
	apiPair, err := tls.X509KeyPair(apiCert, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		certs []tls.Certificate
		ok    bool
	}{
		"API server's kubelet client": {[]tls.Certificate{apiPair}, true},
		"node client certificate":     {[]tls.Certificate{creds.Client}, true},
		"no client certificate":       {nil, false},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := creds.ClientTLS()
			cfg.Certificates = tc.certs
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			defer client.CloseIdleConnections()
			resp, err := client.Get(kubelet.URL)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("GET = %v, want success %v", err, tc.ok)
			}
		})
	}
}
