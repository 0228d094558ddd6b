package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/pki"
	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

// kubelet is a fake runtime with one running pod, ns/web, served by
// server.Handler over TLS with a real CA.
type kubelet struct {
	rt      *fake.Runtime
	pod     *corev1.Pod
	ids     map[string]string // container name -> runtime ID
	prev    map[string]string // container name -> previous instance's ID
	metrics *server.Metrics
	srv     *httptest.Server
	ca      *pki.CA
	dir     string
	admin   *tls.Config // a client with a system:masters certificate
}

// containers the pod runs (argv per name).
var podContainers = map[string][]string{
	"app":    {"sh", "-c", "echo one; echo two; echo three >&2; trap 'exit 0' TERM; sleep 3600 & wait"},
	"slow":   {"sh", "-c", "echo first; sleep 1; echo second"},
	"talker": {"sh", "-c", "sleep 1; echo hi; echo there >&2; trap 'exit 0' TERM; sleep 3600 & wait"},
}

func newKubelet(t *testing.T) *kubelet {
	t.Helper()
	ctx := t.Context()
	k := &kubelet{rt: fake.New(), ids: map[string]string{}, prev: map[string]string{}, metrics: server.NewMetrics(), dir: t.TempDir()}
	if _, err := k.rt.ImportImage(ctx, bytes.NewReader(nil), "img", runtime.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	ref := runtime.PodRef{UID: "uid-web", Name: "web", Namespace: "ns"}
	sb, err := k.rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: "node1", Pod: ref, Image: "img", Hostname: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.rt.StartContainer(ctx, sb); err != nil {
		t.Fatal(err)
	}
	start := func(name string, attempt int, argv []string) string {
		id, err := k.rt.CreateContainer(ctx, runtime.ContainerSpec{Node: "node1", Pod: ref, SandboxID: sb, Name: name, Attempt: attempt, Image: "img", Command: argv})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	k.prev["app"] = start("app", 0, []string{"sh", "-c", "echo previous life; exit 1"})
	k.pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-web"},
		Spec:       corev1.PodSpec{NodeName: "node1"},
	}
	for name, argv := range podContainers {
		attempt := 0
		if name == "app" {
			attempt = 1
		}
		k.ids[name] = start(name, attempt, argv)
		k.pod.Spec.Containers = append(k.pod.Spec.Containers, corev1.Container{Name: name, Image: "img"})
	}
	k.pod.Spec.Containers = append(k.pod.Spec.Containers, corev1.Container{Name: "pending", Image: "img"})
	t.Cleanup(func() {
		list, _ := k.rt.ListContainers(context.Background(), runtime.ListFilter{})
		for _, c := range list {
			_ = k.rt.RemoveContainer(context.Background(), c.ID)
		}
	})
	k.waitLogs(t, k.ids["app"], "one\ntwo\nthree\n")

	k.ca, err = pki.EnsureCA(k.dir)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.EnsureServingCert(k.dir, k.ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	k.srv = httptest.NewUnstartedServer(server.Handler(k.config(t)))
	k.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*serving}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: k.ca.Pool()}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	k.admin = k.clientTLS(t, "admin", "system:masters")
	return k
}

// config is the server configuration over k's runtime and pod.
func (k *kubelet) config(t *testing.T) server.Config {
	log := logrus.New()
	log.SetOutput(t.Output())
	return server.Config{
		Runtime: k.rt,
		Pods:    func() []*corev1.Pod { return []*corev1.Pod{k.pod} },
		Container: func(ns, pod, name string, previous bool) (string, error) {
			ids := k.ids
			if previous {
				ids = k.prev
			}
			if id, ok := ids[name]; ok && ns == "ns" && pod == "web" {
				return id, nil
			}
			return "", fmt.Errorf("container %s/%s/%s: %w", ns, pod, name, runtime.ErrNotFound)
		},
		Node:     func() *corev1.Node { return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}} },
		NodeName: "node1",
		Metrics:  k.metrics,
		Log:      logrus.NewEntry(log).WithField("component", "kubelet-server"),
	}
}

// clientTLS trusts the CA and presents a client certificate for user in
// groups (none when user is empty).
func (k *kubelet) clientTLS(t *testing.T, user string, groups ...string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: k.ca.Pool()}
	if user != "" {
		certPEM, keyPEM, err := pki.EnsureClientCert(k.dir, k.ca, "client-"+user, user, groups)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// get fetches path as the admin and returns the status and body.
func (k *kubelet) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: k.admin}, Timeout: 30 * time.Second}
	resp, err := c.Get(k.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// waitLogs waits until id's output is want.
func (k *kubelet) waitLogs(t *testing.T, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out bytes.Buffer
		_ = k.rt.Logs(t.Context(), id, runtime.LogOptions{TailLines: -1}, &out, &out)
		if out.String() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s: %q, want %q", id, out.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamResult is what a remote command stream delivered.
type streamResult struct {
	protocol       string
	stdout, stderr string
	status         *metav1.Status
}

// stream runs a remote command over a WebSocket at url (https://…),
// sending stdin and then (with v5) closing it.
func stream(t *testing.T, tlsCfg *tls.Config, url string, protocols []string, stdin string) streamResult {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: tlsCfg, Subprotocols: protocols, HandshakeTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, resp, err := d.DialContext(ctx, "wss"+strings.TrimPrefix(url, "https"), nil)
	if err != nil {
		body := ""
		if resp != nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			body = fmt.Sprintf(" (%d %s)", resp.StatusCode, b.String())
		}
		t.Fatalf("dial %s: %v%s", url, err, body)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	res := streamResult{protocol: conn.Subprotocol()}
	var wmu sync.Mutex
	if stdin != "" {
		wmu.Lock()
		_ = conn.WriteMessage(websocket.BinaryMessage, append([]byte{server.ChannelStdin}, stdin...))
		if res.protocol == server.ProtocolV5 {
			_ = conn.WriteMessage(websocket.BinaryMessage, []byte{server.ChannelClose, server.ChannelStdin})
		}
		wmu.Unlock()
	}
	var stdout, stderr bytes.Buffer
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case server.ChannelStdout:
			stdout.Write(msg[1:])
		case server.ChannelStderr:
			stderr.Write(msg[1:])
		case server.ChannelError:
			if len(msg) > 1 {
				var st metav1.Status
				if err := json.Unmarshal(msg[1:], &st); err != nil {
					t.Fatalf("error channel: %v: %q", err, msg[1:])
				}
				res.status = &st
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("stream %s did not end in time", url)
	}
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// httptestServer serves h over plain HTTP and returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
