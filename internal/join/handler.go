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
}

// NewHandler returns a Handler signing with ca.
func NewHandler(ca *pki.CA, log *logrus.Entry) *Handler {
	return &Handler{ca: ca, log: log}
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
