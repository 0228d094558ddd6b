package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/mizzen-dev/mizzen/internal/apiserver"
	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	kubeletserver "github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/pki"
	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// proxyEnv is an API server (over a real etcd) whose pod ns/web runs on a
// node served by a kubelet handler over the fake runtime.
type proxyEnv struct {
	api     string // the API server's URL (plain HTTP)
	handler http.Handler
	noKube  string // an API server without a kubelet client
}

func newProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ds, stopEtcd, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	logger := logrus.New()
	logger.SetOutput(t.Output())
	logger.SetLevel(logrus.DebugLevel) // exercises the request logging wrapper
	log := logrus.NewEntry(logger)
	reg := kinds.Registry()
	scheme, err := kinds.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	st := storage.New(ds.Client)
	c := cache.New(st, rest.CacheSpecs(reg), log)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; stopEtcd() })
	c.WaitSynced(ctx)
	store := rest.New(reg, st, c)

	kubeletURL, clientTLS := startKubelet(t)
	u, _ := url.Parse(kubeletURL)
	port, _ := strconv.Atoi(u.Port())

	kind := func(resource string) *registry.Kind {
		k, ok := reg.Lookup(schema.GroupVersionResource{Version: "v1", Resource: resource})
		if !ok {
			t.Fatalf("no %s", resource)
		}
		return k
	}
	create := func(ns string, obj k8sruntime.Object, resource string) {
		t.Helper()
		if _, err := store.Create(ctx, kind(resource), ns, obj, rest.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", resource, err)
		}
	}
	create("", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, "namespaces")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}
	create("", node, "nodes")
	if _, err := store.Update(ctx, kind("nodes"), "", "node1", func(cur k8sruntime.Object) (k8sruntime.Object, error) {
		n := cur.(*corev1.Node)
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node1.invalid"}, {Type: corev1.NodeInternalIP, Address: u.Hostname()}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
		return n, nil
	}, rest.UpdateOptions{Subresource: "status"}); err != nil {
		t.Fatalf("node status: %v", err)
	}
	containers := []corev1.Container{{Name: "app", Image: "img"}, {Name: "slow", Image: "img"}, {Name: "pending", Image: "img"}}
	create("ns", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{NodeName: "node1", Containers: containers}}, "pods")
	create("ns", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "solo", Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app"}},
		Spec: corev1.PodSpec{NodeName: "node1", Containers: containers}}, "pods")
	create("ns", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unbound"}, Spec: corev1.PodSpec{Containers: containers[:1]}}, "pods")
	create("ns", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "done"}, Spec: corev1.PodSpec{NodeName: "node1", Containers: containers[:1]}}, "pods")
	if _, err := store.Update(ctx, kind("pods"), "ns", "done", func(cur k8sruntime.Object) (k8sruntime.Object, error) {
		p := cur.(*corev1.Pod)
		p.Status.Phase = corev1.PodSucceeded
		return p, nil
	}, rest.UpdateOptions{Subresource: "status"}); err != nil {
		t.Fatalf("pod status: %v", err)
	}

	var h http.Handler
	serve := func(kc *apiserver.KubeletClient) string {
		h = apiserver.New(apiserver.Config{Store: store, Scheme: scheme, Kubelet: kc, Log: log,
			Mounts: []func(chi.Router){discovery.New(reg).Mount}}).Handler()
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	e := &proxyEnv{noKube: serve(nil)}
	e.api, e.handler = serve(&apiserver.KubeletClient{TLS: clientTLS}), h
	return e
}

// startKubelet serves the kubelet API over the fake runtime for pods ns/web
// and ns/solo (sharing containers) and returns its URL and a client TLS
// configuration with the API server's kubelet client certificate.
func startKubelet(t *testing.T) (string, *tls.Config) {
	t.Helper()
	ctx := t.Context()
	rt := fake.New()
	if _, err := rt.ImportImage(ctx, bytes.NewReader(nil), "img", runtime.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	ref := runtime.PodRef{UID: "uid-web", Name: "web", Namespace: "ns"}
	sb, err := rt.CreateSandbox(ctx, runtime.SandboxSpec{Node: "node1", Pod: ref, Image: "img"})
	if err == nil {
		err = rt.StartContainer(ctx, sb)
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for name, argv := range map[string][]string{
		"app":  {"sh", "-c", "echo one; echo two; trap 'exit 0' TERM; sleep 3600 & wait"},
		"slow": {"sh", "-c", "echo first; sleep 1; echo second"},
	} {
		id, err := rt.CreateContainer(ctx, runtime.ContainerSpec{Node: "node1", Pod: ref, SandboxID: sb, Name: name, Image: "img", Command: argv})
		if err == nil {
			err = rt.StartContainer(ctx, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	t.Cleanup(func() {
		list, _ := rt.ListContainers(context.Background(), runtime.ListFilter{})
		for _, c := range list {
			_ = rt.RemoveContainer(context.Background(), c.ID)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out bytes.Buffer
		_ = rt.Logs(ctx, ids["app"], runtime.LogOptions{TailLines: -1}, &out, &out)
		if out.String() == "one\ntwo\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app logs %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pod := func(name string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		for _, c := range []string{"app", "slow", "pending"} {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	pods := []*corev1.Pod{pod("web"), pod("solo")}
	logger := logrus.New()
	logger.SetOutput(t.Output())
	h := kubeletserver.Handler(kubeletserver.Config{
		Runtime: rt,
		Pods:    func() []*corev1.Pod { return pods },
		Container: func(ns, pod, name string, previous bool) (string, error) {
			if id, ok := ids[name]; ok && !previous {
				return id, nil
			}
			return "", fmt.Errorf("%s: %w", name, runtime.ErrNotFound)
		},
		Log: logrus.NewEntry(logger),
	})

	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := pki.EnsureServingCert(dir, ca, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*serving}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	certPEM, keyPEM, err := pki.EnsureClientCert(dir, ca, pki.KubeletClientCertBase, pki.KubeletClientUser, []string{pki.KubeletClientGroup})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}}
}

// get returns the status code and body of GET base+path.
func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPodLogProxy(t *testing.T) {
	e := newProxyEnv(t)
	const pods = "/api/v1/namespaces/ns/pods/"
	tests := []struct {
		name, path string
		base       string
		code       int
		body       string // exact for 200, a substring of the Status otherwise
	}{
		{name: "logs", path: pods + "web/log?container=app", code: 200, body: "one\ntwo\n"},
		{name: "tail", path: pods + "web/log?container=app&tailLines=1", code: 200, body: "two\n"},
		{name: "default container annotation", path: pods + "solo/log", code: 200, body: "one\ntwo\n"},
		{name: "follow", path: pods + "web/log?container=slow&follow=true", code: 200, body: "first\nsecond\n"},
		{name: "unbound pod", path: pods + "unbound/log", code: 200, body: ""},
		{name: "no such pod", path: pods + "nope/log", code: 404, body: `pods \"nope\" not found`},
		{name: "unknown container", path: pods + "web/log?container=nope", code: 400, body: "container nope is not valid for pod web"},
		{name: "container needed", path: pods + "web/log", code: 400, body: "a container name must be specified for pod web, choose one of: [app slow pending]"},
		{name: "invalid options", path: pods + "web/log?container=app&tailLines=-1", code: 422, body: "tailLines"},
		{name: "kubelet says not started", path: pods + "web/log?container=pending", code: 400,
			body: `container \"pending\" in pod \"web\" is waiting to start: ContainerCreating`},
		{name: "no kubelet client", path: pods + "web/log?container=app", base: "nokube", code: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := e.api
			if tc.base == "nokube" {
				base = e.noKube
			}
			code, body := get(t, base, tc.path)
			if code != tc.code {
				t.Fatalf("GET %s: %d %s, want %d", tc.path, code, body, tc.code)
			}
			if (code == 200 && body != tc.body) || (code != 200 && !strings.Contains(body, tc.body)) {
				t.Errorf("GET %s: %q, want %q", tc.path, body, tc.body)
			}
		})
	}
}

func TestPodExecProxy(t *testing.T) {
	e := newProxyEnv(t)
	wsURL := func(path string, q url.Values) string {
		return "ws" + strings.TrimPrefix(e.api, "http") + "/api/v1/namespaces/ns/pods/" + path + "?" + q.Encode()
	}
	t.Run("round trip", func(t *testing.T) {
		q := url.Values{"container": {"app"}, "command": {"sh"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
		d := websocket.Dialer{Subprotocols: []string{kubeletserver.ProtocolV5, kubeletserver.ProtocolV4}, HandshakeTimeout: 10 * time.Second}
		conn, resp, err := d.Dial(wsURL("web/exec", q), http.Header{"Authorization": {"Bearer secret"}})
		if err != nil {
			t.Fatalf("dial: %v (%v)", err, resp)
		}
		defer conn.Close()
		if conn.Subprotocol() != kubeletserver.ProtocolV5 {
			t.Errorf("protocol %q", conn.Subprotocol())
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_ = conn.WriteMessage(websocket.BinaryMessage, append([]byte{kubeletserver.ChannelStdin}, "echo hello; echo oops >&2; exit 7"...))
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte{kubeletserver.ChannelClose, kubeletserver.ChannelStdin})
		var stdout, stderr bytes.Buffer
		var st *metav1.Status
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				break
			}
			if len(msg) < 2 {
				continue
			}
			switch msg[0] {
			case kubeletserver.ChannelStdout:
				stdout.Write(msg[1:])
			case kubeletserver.ChannelStderr:
				stderr.Write(msg[1:])
			case kubeletserver.ChannelError:
				st = &metav1.Status{}
				if err := json.Unmarshal(msg[1:], st); err != nil {
					t.Fatal(err)
				}
			}
		}
		if stdout.String() != "hello\n" || stderr.String() != "oops\n" {
			t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
		if st == nil || st.Reason != kubeletserver.ReasonNonZeroExitCode || st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Message != "7" {
			t.Errorf("status %+v, want exit code 7", st)
		}
	})
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"completed pod", "done/exec?command=true&stdout=true", 400, "cannot exec into a container in a completed pod; current phase is Succeeded"},
		{"completed pod attach", "done/attach?stdout=true", 400, "cannot attach a container in a completed pod; current phase is Succeeded"},
		{"unbound pod", "unbound/exec?command=true&stdout=true", 400, "pod unbound does not have a host assigned"},
		{"no such pod", "nope/exec?command=true&stdout=true", 404, `pods \"nope\" not found`},
		{"unknown container", "web/exec?container=nope&command=true&stdout=true", 400, "container nope is not valid for pod web"},
		{"not an upgrade", "web/exec?container=app&command=true&stdout=true", 400, "Upgrade request required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, e.api, "/api/v1/namespaces/ns/pods/"+tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s: %d %s, want %d %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
}
