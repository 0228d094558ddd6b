// Package join lets agents join the cluster: the server's endpoints that
// hand out the CA and sign node certificates, and the agent's Join that
// trusts the server through the join token's CA hash and obtains them.
package join

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/pki"
)

// Paths the server serves for joining agents.
const (
	CACertsPath         = "/cacerts"
	NodeCredentialsPath = "/v1-mizzen/node-credentials"
)

// BootstrapGroup is the group of the join token's user.
const BootstrapGroup = "system:bootstrappers"

// maxRequestBytes bounds a credentials request: two CSRs and some names.
const maxRequestBytes = 64 << 10

// Request asks for a node's certificates.
type Request struct {
	NodeName        string   `json:"nodeName"`
	ClientCSR       string   `json:"clientCSR"`
	ServingCSR      string   `json:"servingCSR"`
	ServingIPs      []string `json:"servingIPs,omitempty"`
	ServingDNSNames []string `json:"servingDNSNames,omitempty"`
}

// Response carries a node's signed certificates and the CA.
type Response struct {
	CAPEM          string `json:"caPEM"`
	ClientCertPEM  string `json:"clientCertPEM"`
	ServingCertPEM string `json:"servingCertPEM"`
}

// Handler serves the join endpoints with the cluster CA.
type Handler struct {
	ca  *pki.CA
	log *logrus.Entry
	// reserved are the API server's own names (lower case), which no
	// node's serving certificate may carry.
	reserved map[string]bool
}

// NewHandler returns a Handler signing with ca. reserved are the API
// server's serving certificate names: the cluster CA signs both the API
// server's and the kubelets' serving certificates, so a node holding a
// serving certificate for one of them could impersonate the API server to
// every agent and kubectl. Requests naming them, the kubernetes service
// names, the address the request reached, or a wildcard are refused.
// Loopback names stay allowed: using them takes a foothold on the host
// itself, and a node on the server's host needs them.
func NewHandler(ca *pki.CA, log *logrus.Entry, reserved ...string) *Handler {
	h := &Handler{ca: ca, log: log, reserved: map[string]bool{}}
	for _, r := range append(reserved, "kubernetes", "kubernetes.default", "kubernetes.default.svc") {
		if r = normalHost(r); r != "" && !loopback(r) {
			h.reserved[r] = true
		}
	}
	return h
}

// normalHost returns host lower case and, for an IP address, in canonical
// form.
func normalHost(host string) string {
	host = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return host
}

func loopback(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// servingNameError returns why a node's serving certificate may not name
// host, or nil. r is the request, whose target is one of the server's
// addresses.
func (h *Handler) servingNameError(r *http.Request, host string) error {
	n := normalHost(host)
	own := map[string]bool{}
	if hst, _, err := net.SplitHostPort(r.Host); err == nil {
		own[normalHost(hst)] = true
	} else {
		own[normalHost(r.Host)] = true
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if hst, _, err := net.SplitHostPort(a.String()); err == nil {
			own[normalHost(hst)] = true
		}
	}
	switch {
	case n == "":
		return nil
	case strings.Contains(n, "*"):
		return fmt.Errorf("serving certificate name %q: wildcards are not allowed", host)
	case loopback(n):
		return nil
	case h.reserved[n], own[n], strings.HasPrefix(n, "kubernetes.default.svc."):
		return fmt.Errorf("serving certificate name %q is the API server's: a node's certificate may not name it", host)
	}
	return nil
}

// Public reports whether path is served without authentication: only the
// CA certificate, which agents fetch before they trust the server.
func Public(path string) bool { return path == CACertsPath }

// Mount adds the join routes to r (the API server's authenticated router;
// see Public for the path that must bypass authentication).
func (h *Handler) Mount(r chi.Router) {
	r.Get(CACertsPath, h.caCerts)
	r.Post(NodeCredentialsPath, h.nodeCredentials)
}

// caCerts serves the CA PEM byte for byte: the token's hash is over it.
func (h *Handler) caCerts(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(h.ca.CertPEM)
}

var nodesResource = schema.GroupResource{Resource: "nodes"}

func (h *Handler) nodeCredentials(w http.ResponseWriter, r *http.Request) {
	u, ok := authn.UserFrom(r.Context())
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	var req Request
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err == nil && len(body) > maxRequestBytes {
		err = errors.New("request body too large")
	}
	if err == nil {
		err = json.NewDecoder(bytes.NewReader(body)).Decode(&req)
	}
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("decode node credentials request: %v", err)))
		return
	}
	if err := allowed(u, req.NodeName); err != nil {
		writeStatus(w, err)
		return
	}
	if err := pki.ValidateNodeName(req.NodeName); err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	ips := make([]net.IP, 0, len(req.ServingIPs))
	for _, s := range req.ServingIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("servingIPs: %q is not an IP address", s)))
			return
		}
		ips = append(ips, ip)
	}
	for _, host := range append(append([]string{req.NodeName}, req.ServingIPs...), req.ServingDNSNames...) {
		if err := h.servingNameError(r, host); err != nil {
			writeStatus(w, apierrors.NewForbidden(nodesResource, req.NodeName, err))
			return
		}
	}
	certs, err := pki.SignNodeCSRs(h.ca, req.NodeName, []byte(req.ClientCSR), []byte(req.ServingCSR), ips, req.ServingDNSNames)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	h.log.WithFields(logrus.Fields{"node": req.NodeName, "user": u.Name}).Info("issued node credentials")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Response{
		CAPEM: string(certs.CAPEM), ClientCertPEM: string(certs.ClientCertPEM), ServingCertPEM: string(certs.ServingCertPEM),
	})
}

// allowed lets the bootstrap user obtain credentials for any node and a
// node renew only its own.
func allowed(u authn.User, nodeName string) error {
	if node, ok := pki.NodeName(u.Name, u.Groups); ok {
		if node == nodeName {
			return nil
		}
		return apierrors.NewForbidden(nodesResource, nodeName,
			fmt.Errorf("node %q may only obtain credentials for itself", node))
	}
	for _, g := range u.Groups {
		if g == BootstrapGroup {
			return nil
		}
	}
	return apierrors.NewForbidden(nodesResource, nodeName,
		fmt.Errorf("User %q cannot obtain node credentials", u.Name))
}

func writeStatus(w http.ResponseWriter, err error) {
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	status := se.ErrStatus
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(status.Code))
	_ = json.NewEncoder(w).Encode(status)
}
