package pki

import "crypto/tls"

// ServerTLSConfig is the API server's TLS configuration: TLS 1.2 or newer,
// cert as the serving certificate, HTTP/2 and HTTP/1.1, and client
// certificates requested and, when a client sends one, verified against ca.
// A client without a certificate still connects and may authenticate with a
// bearer token.
func ServerTLSConfig(cert *tls.Certificate, ca *CA) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		NextProtos:   []string{"h2", "http/1.1"},
	}
}
