package prober

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// grpcTransport speaks HTTP/2 without TLS (prior knowledge), as a gRPC
// client without credentials does.
var grpcTransport = func() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: &p, DisableKeepAlives: true, DialContext: dialer().DialContext}
}()

// The grpc.health.v1 serving statuses.
var healthStatuses = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// The gRPC status codes, by number.
var grpcCodes = []string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
	"OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

const (
	grpcDeadlineExceeded = 4
	grpcUnimplemented    = 12
)

// GRPC calls grpc.health.v1.Health/Check for the action's service on the
// pod IP and succeeds when the service is SERVING, with the messages the
// kubelet's gRPC prober gives.
func GRPC(ctx context.Context, action *corev1.GRPCAction, podIP string, timeout time.Duration) (Result, string) {
	service := ""
	if action.Service != nil {
		service = *action.Service
	}
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(action.Port)))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check", bytes.NewReader(healthRequest(service)))
	if err != nil {
		return Unknown, err.Error()
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Grpc-Timeout", strconv.FormatInt(timeout.Milliseconds(), 10)+"m")
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	}))
	res, err := (&http.Client{Transport: grpcTransport}).Do(req)
	var op *net.OpError
	switch {
	case err != nil && errors.As(err, &op) && op.Op == "dial":
		return Failure, fmt.Sprintf("error: failed to connect service at %q: %v", addr, op)
	case err != nil && errors.Is(err, context.DeadlineExceeded) && !connected.Load():
		return Failure, fmt.Sprintf("timeout: failed to connect service %q within %v: %v", addr, timeout, context.DeadlineExceeded)
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return Failure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
	case err != nil:
		return Failure, fmt.Sprintf("error: health rpc probe failed: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Failure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
		}
		return Failure, fmt.Sprintf("error: health rpc probe failed: %v", err)
	}
	code, msg := grpcStatus(res)
	switch {
	case res.StatusCode != http.StatusOK:
		return Failure, fmt.Sprintf("error: health rpc probe failed: unexpected HTTP status code %d", res.StatusCode)
	case code == grpcUnimplemented:
		return Failure, "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): " + msg
	case code == grpcDeadlineExceeded:
		return Failure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
	case code != 0:
		name := strconv.Itoa(code)
		if code > 0 && code < len(grpcCodes) {
			name = grpcCodes[code]
		}
		return Failure, fmt.Sprintf("error: health rpc probe failed: rpc error: code = %s desc = %s", name, msg)
	}
	status, err := healthStatus(body)
	if err != nil {
		return Failure, "error: health rpc probe failed: " + err.Error()
	}
	if status != 1 {
		name := strconv.Itoa(status)
		if status >= 0 && status < len(healthStatuses) {
			name = healthStatuses[status]
		}
		return Failure, fmt.Sprintf("service unhealthy (responded with %q)", name)
	}
	return Success, "service healthy"
}

// healthRequest frames a HealthCheckRequest{service}: the message is field
// 1 (a string), omitted when empty.
func healthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(service)))...)
		msg = append(msg, service...)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// grpcStatus reads grpc-status and grpc-message from the trailers, or
// from the headers of a trailers-only response. A missing status is
// Unknown (2).
func grpcStatus(res *http.Response) (int, string) {
	for _, h := range []http.Header{res.Trailer, res.Header} {
		if s := h.Get("Grpc-Status"); s != "" {
			code, err := strconv.Atoi(s)
			if err != nil {
				code = 2
			}
			msg, err := url.PathUnescape(h.Get("Grpc-Message"))
			if err != nil {
				msg = h.Get("Grpc-Message")
			}
			return code, msg
		}
	}
	return 2, "missing grpc-status"
}

// healthStatus decodes the status (field 1, an enum) of the one framed
// HealthCheckResponse in body.
func healthStatus(body []byte) (int, error) {
	if len(body) < 5 {
		return 0, errors.New("no response message")
	}
	if body[0] != 0 {
		return 0, errors.New("compressed response message")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	msg := body[5:]
	if uint32(len(msg)) < n {
		return 0, errors.New("truncated response message")
	}
	msg = msg[:n]
	status := 0 // proto3 default: UNKNOWN
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, errors.New("malformed response message")
		}
		msg = msg[k:]
		switch tag & 7 {
		case 0: // varint
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return 0, errors.New("malformed response message")
			}
			msg = msg[k:]
			if tag>>3 == 1 {
				status = int(v)
			}
		case 2: // length-delimited: skip
			l, k := binary.Uvarint(msg)
			if k <= 0 || uint64(len(msg)-k) < l {
				return 0, errors.New("malformed response message")
			}
			msg = msg[k+int(l):]
		default:
			return 0, fmt.Errorf("unexpected wire type %d in response message", tag&7)
		}
	}
	return status, nil
}
