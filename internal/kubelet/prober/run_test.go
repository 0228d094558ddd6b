package prober

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

func TestRunExec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmd     []string
		env     []corev1.EnvVar
		timeout int32
		stopped bool // the container has exited
		want    Result
		out     string
	}{
		{name: "exit 0", cmd: []string{"sh", "-c", "echo ok"}, want: Success, out: "ok\n"},
		{name: "exit 1 with stdout and stderr", cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 1"}, want: Failure, out: "out\nerr\n"},
		{name: "static env expanded", cmd: []string{"echo", "$(GREETING)", "$(SECRET)"},
			env:  []corev1.EnvVar{{Name: "GREETING", Value: "hi"}, {Name: "SECRET", ValueFrom: &corev1.EnvVarSource{}}},
			want: Success, out: "hi $(SECRET)\n"},
		{name: "timeout", cmd: []string{"sleep", "5"}, timeout: 2, want: Failure, out: `command "sleep 5" timed out`},
		{name: "not running", cmd: []string{"true"}, stopped: true, want: Unknown, out: "container is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newNode(t)
				defer n.close()
				id := n.run(0)
				if tc.stopped {
					if err := n.rt.Exit(id, 0); err != nil {
						t.Fatal(err)
					}
				}
				pod := testPod(nil, nil, nil)
				pod.Spec.Containers[0].Env = tc.env
				p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: tc.cmd}}, TimeoutSeconds: tc.timeout}
				start := time.Now()
				got, out := Run(context.Background(), n.rt, p, Target{Pod: pod, Container: "app", ContainerID: id})
				if got != tc.want || !strings.Contains(out, tc.out) {
					t.Errorf("Run = %v, %q; want %v, %q", got, out, tc.want, tc.out)
				}
				if tc.timeout > 0 && time.Since(start) != time.Duration(tc.timeout)*time.Second {
					t.Errorf("the probe took %v, want its timeout", time.Since(start))
				}
			})
		})
	}
}

func TestExecOutputIsLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t)
		defer n.close()
		id := n.run(0)
		n.rt.ExecHook = func(_ string, opts runtime.ExecOptions) (int, bool) {
			fmt.Fprint(opts.Stdout, strings.Repeat("x", 20000))
			fmt.Fprint(opts.Stderr, "tail")
			return 1, true
		}
		r, out := Exec(context.Background(), n.rt, id, []string{"x"}, time.Second)
		if r != Failure || len(out) != maxOutput {
			t.Errorf("Exec = %v with %d bytes, want failure with %d", r, len(out), maxOutput)
		}
	})
}

// serve starts a test server that answers by path and returns its port.
func serve(t *testing.T, tlsServer bool) (*httptest.Server, int) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "secret body", 500) })
	mux.HandleFunc("/local", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://elsewhere.invalid/ok")
		w.WriteHeader(http.StatusFound)
		fmt.Fprint(w, "moved")
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ua=%s accept=%s x=%s host=%s", r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("X-Probe"), r.Host)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("y", 3*maxOutput)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	var s *httptest.Server
	if tlsServer {
		s = httptest.NewTLSServer(mux)
	} else {
		s = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s, s.Listener.Addr().(*net.TCPAddr).Port
}

func TestHTTPGet(t *testing.T) {
	_, port := serve(t, false)
	_, tlsPort := serve(t, true)
	refused := closedPort(t)
	pod := testPod(nil, nil, nil)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}
	for _, tc := range []struct {
		name    string
		action  corev1.HTTPGetAction
		timeout time.Duration
		want    Result
		out     string // the output, or with a trailing "…" its prefix
	}{
		{name: "200", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)}, want: Success, out: "fine"},
		{name: "500 hides the body", action: corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)}, want: Failure, out: "HTTP probe failed with statuscode: 500"},
		{name: "redirect to the same host is followed", action: corev1.HTTPGetAction{Path: "/local", Port: intstr.FromInt(port)}, want: Success, out: "fine"},
		{name: "redirect to another host is a warning", action: corev1.HTTPGetAction{Path: "/away", Port: intstr.FromInt(port)}, want: Warning, out: "Probe terminated redirects, Response body: moved"},
		{name: "named port", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("web")}, want: Success, out: "fine"},
		{name: "port number as a string", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString(strconv.Itoa(port))}, want: Success, out: "fine"},
		{name: "unknown port name", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("nope")}, want: Unknown, out: "port nope not found"},
		{name: "headers", action: corev1.HTTPGetAction{Path: "/headers", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{{Name: "x-probe", Value: "1"}, {Name: "Host", Value: "example.com"}}},
			want: Success, out: "ua=" + UserAgent + " accept=*/* x=1 host=example.com"},
		{name: "https without verification", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(tlsPort), Scheme: corev1.URISchemeHTTPS}, want: Success, out: "fine"},
		{name: "body read is limited", action: corev1.HTTPGetAction{Path: "/big", Port: intstr.FromInt(port)}, want: Success, out: strings.Repeat("y", maxOutput)},
		{name: "connection refused", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(refused)}, want: Failure,
			out: fmt.Sprintf(`Get "http://127.0.0.1:%d/ok": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused)},
		{name: "timeout", action: corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)}, timeout: 50 * time.Millisecond, want: Failure,
			out: fmt.Sprintf(`Get "http://127.0.0.1:%d/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			got, out := HTTPGet(context.Background(), &tc.action, pod, "app", "127.0.0.1", timeout)
			if got != tc.want || out != tc.out {
				t.Errorf("HTTPGet = %v, %q; want %v, %q", got, out, tc.want, tc.out)
			}
		})
	}
}

func TestUserAgentNamesTheKubernetesVersion(t *testing.T) {
	if UserAgent != "kube-probe/1.37" {
		t.Errorf("UserAgent = %q", UserAgent)
	}
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestRunTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := l.Addr().(*net.TCPAddr).Port
	refused := closedPort(t)
	pod := testPod(nil, nil, nil)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "db", ContainerPort: int32(open)}}
	for _, tc := range []struct {
		name    string
		handler corev1.ProbeHandler
		want    Result
		out     string
	}{
		{"open port", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(open)}}, Success, ""},
		{"named port", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("db")}}, Success, ""},
		{"explicit host", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt(open)}}, Success, ""},
		{"closed port", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(refused)}}, Failure,
			fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", refused)},
		{"invalid port", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(0)}}, Unknown, "invalid port number: 0"},
		{"no handler", corev1.ProbeHandler{}, Unknown, "missing probe handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := Target{Pod: pod, Container: "app", PodIP: "127.0.0.1"}
			if tc.handler.TCPSocket != nil && tc.handler.TCPSocket.Host != "" {
				target.PodIP = "192.0.2.1" // unroutable: the host must win
			}
			got, out := Run(context.Background(), nil, &corev1.Probe{ProbeHandler: tc.handler}, target)
			if got != tc.want || out != tc.out {
				t.Errorf("Run = %v, %q; want %v, %q", got, out, tc.want, tc.out)
			}
		})
	}
}
