package apiclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver"
	"github.com/mizzen-dev/mizzen/internal/apiserver/authn"
	"github.com/mizzen-dev/mizzen/internal/apiserver/kinds"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/datastore"
	"github.com/mizzen-dev/mizzen/internal/etcdtest"
	"github.com/mizzen-dev/mizzen/internal/pki"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

// testServer is a real API server (embedded etcd, cache, REST store,
// handlers, client-certificate authentication) behind an HTTPS listener
// with HTTP/2, shared by the package's tests.
type testServer struct {
	url  string
	ds   *datastore.Datastore
	ca   *x509.CertPool
	pki  string // directory of the CA and certificates
	pkCA *pki.CA

	mu       sync.Mutex
	requests []string        // "METHOD /path?query" of every request, guarded by mu
	faults   map[string]int  // "METHOD /path" prefix → requests still to fail with 500, guarded by mu
	errorEvs map[string]int  // "METHOD /path" prefix → watches still to answer with one ERROR event, guarded by mu
	stalls   map[string]bool // "METHOD /path" prefixes of requests that hang until cancelled, guarded by mu
	conns    []string        // "proto remote-addr user-agent" of every request, guarded by mu
}

var srv *testServer

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	quiet := logrus.New()
	quiet.Out = io.Discard
	log := logrus.NewEntry(quiet)
	ds, stopEtcd, err := etcdtest.Start()
	if err != nil {
		return 0, err
	}
	defer stopEtcd()
	dir, err := os.MkdirTemp("", "mizzen-apiclient")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		return 0, err
	}
	cert, err := pki.EnsureServingCert(dir, ca, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return 0, err
	}

	reg := kinds.Registry()
	scheme, err := kinds.Scheme()
	if err != nil {
		return 0, err
	}
	st := storage.New(ds.Client)
	c := cache.New(st, rest.CacheSpecs(reg), log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := c.WaitSynced(ctx); err != nil {
		return 0, err
	}
	store := rest.New(reg, st, c)
	api := apiserver.New(apiserver.Config{
		Store: store, Scheme: scheme,
		Authenticate: authn.Middleware(authn.New(ca.Pool(), nil), authn.Public),
		Log:          log,
	})
	srv = &testServer{ds: ds, ca: ca.Pool(), pki: dir, pkCA: ca, faults: map[string]int{}, errorEvs: map[string]int{}, stalls: map[string]bool{}}
	ts := httptest.NewUnstartedServer(srv.record(api.Handler()))
	ts.TLS = pki.ServerTLSConfig(cert, ca)
	ts.EnableHTTP2 = true
	ts.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // refused handshakes are tested
	ts.StartTLS()
	defer ts.Close()
	srv.url = ts.URL
	if _, err := store.Create(ctx, mustKind(reg.Kinds(), "namespaces"), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, rest.CreateOptions{}); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func mustKind(ks []*registry.Kind, resource string) *registry.Kind {
	for _, k := range ks {
		if k.GVR.Group == "" && k.GVR.Resource == resource {
			return k
		}
	}
	panic(resource)
}

// record logs each request and fails those matching a configured fault.
func (s *testServer) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rq := r.Method + " " + r.URL.RequestURI()
		s.requests = append(s.requests, rq)
		s.conns = append(s.conns, r.Proto+" "+r.RemoteAddr+" "+r.UserAgent())
		fail, stall, errorEv := false, false, false
		for prefix, n := range s.faults {
			if n > 0 && strings.HasPrefix(rq, prefix) {
				s.faults[prefix] = n - 1
				fail = true
			}
		}
		for prefix, n := range s.errorEvs {
			if n > 0 && strings.HasPrefix(rq, prefix) && r.URL.Query().Get("watch") == "true" {
				s.errorEvs[prefix] = n - 1
				errorEv = true
			}
		}
		for prefix := range s.stalls {
			stall = stall || strings.HasPrefix(rq, prefix)
		}
		s.mu.Unlock()
		if fail {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		if errorEv {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","reason":"InternalError","code":500}}`+"\n")
			return
		}
		if stall {
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requestsWith returns the recorded requests starting with prefix.
func (s *testServer) requestsWith(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// failNext makes the next n requests starting with prefix fail with 500.
func (s *testServer) failNext(prefix string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[prefix] = n
}

// errorEvent makes the next n watches starting with prefix get one ERROR
// event (500 InternalError) and end.
func (s *testServer) errorEvent(prefix string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorEvs[prefix] = n
}

// stall makes requests starting with prefix hang until they are cancelled.
func (s *testServer) stall(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalls[prefix] = true
}

// connections returns the recorded "proto remote-addr user-agent" lines
// of requests whose user agent is agent.
func (s *testServer) connections(agent string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.conns {
		if strings.HasSuffix(c, " "+agent) {
			out = append(out, c)
		}
	}
	return out
}

// clientAs returns a Client authenticated with a certificate for user in
// groups (no certificate when user is "").
func clientAs(t *testing.T, user string, groups ...string) *Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: srv.ca, MinVersion: tls.VersionTLS12}
	if user != "" {
		base := strings.NewReplacer(":", "-").Replace(user)
		certPEM, keyPEM, err := pki.EnsureClientCert(srv.pki, srv.pkCA, base, user, groups)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	c, err := New(Config{Server: srv.url, TLS: cfg, UserAgent: "apiclient-test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// admin returns a client in system:masters.
func admin(t *testing.T) *Client { return clientAs(t, "system:admin", "system:masters") }

// namespaces counts the namespaces tests created, to name them uniquely
// (tests may run with -count).
var namespaces atomic.Int64

// namespace creates a namespace for one test, named after prefix.
func namespace(t *testing.T, c *Client, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, namespaces.Add(1))
	if _, err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// testLog returns a logger writing to the test's output.
func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.Out = t.Output()
	l.Level = logrus.DebugLevel
	return logrus.NewEntry(l).WithField("component", "informer")
}

// eventually polls cond until it is true or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
