package prober

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// healthServer is a grpc.health.v1 server over h2c: each service name
// maps to the serving status it reports; "slow" never answers and "teapot"
// is Unimplemented (a trailers-only response).
func healthServer(t *testing.T) int {
	t.Helper()
	statuses := map[string]byte{"": 1, "db": 2, "cache": 3}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/grpc.health.v1.Health/Check" || r.Header.Get("Content-Type") != "application/grpc" || r.ProtoMajor != 2 {
			http.Error(w, "not a grpc health call", http.StatusBadRequest)
			return
		}
		if r.UserAgent() != UserAgent {
			http.Error(w, "user agent "+r.UserAgent(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		service := ""
		if len(b) > 7 {
			service = string(b[7:]) // frame header, tag, one-byte length
		}
		w.Header().Set("Content-Type", "application/grpc")
		switch service {
		case "slow":
			<-r.Context().Done()
			return
		case "teapot":
			w.Header().Set("Grpc-Status", "12")
			w.Header().Set("Grpc-Message", "unknown%20service")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		msg := []byte{0x08, statuses[service]}
		frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		_, _ = w.Write(append(frame, msg...))
		w.Header().Set("Grpc-Status", "0")
	})
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().(*net.TCPAddr).Port
}

func TestGRPC(t *testing.T) {
	port := healthServer(t)
	refused := closedPort(t)
	for _, tc := range []struct {
		name    string
		service string
		port    int
		timeout time.Duration
		want    Result
		out     string
	}{
		{name: "serving", service: "", want: Success, out: "service healthy"},
		{name: "not serving", service: "db", want: Failure, out: `service unhealthy (responded with "NOT_SERVING")`},
		{name: "service unknown", service: "cache", want: Failure, out: `service unhealthy (responded with "SERVICE_UNKNOWN")`},
		{name: "unimplemented", service: "teapot", want: Failure, out: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service"},
		{name: "timeout", service: "slow", timeout: 50 * time.Millisecond, want: Failure, out: "timeout: health rpc did not complete within 50ms"},
		{name: "refused", service: "", port: refused, want: Failure,
			out: fmt.Sprintf(`error: failed to connect service at "127.0.0.1:%d": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := port
			if tc.port != 0 {
				p = tc.port
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			action := &corev1.GRPCAction{Port: int32(p), Service: &tc.service}
			got, out := GRPC(context.Background(), action, "127.0.0.1", timeout)
			if got != tc.want || out != tc.out {
				t.Errorf("GRPC = %v, %q; want %v, %q", got, out, tc.want, tc.out)
			}
		})
	}
}
