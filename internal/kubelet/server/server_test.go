package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/runtime"
)

func TestContainerLogs(t *testing.T) {
	k := newKubelet(t)
	k.waitLogs(t, k.prev["app"], "previous life\n")
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one\n`)
	tests := []struct {
		name  string
		path  string
		code  int
		body  string
		match *regexp.Regexp
	}{
		{name: "all", path: "/containerLogs/ns/web/app", code: 200, body: "one\ntwo\nthree\n"},
		{name: "tail", path: "/containerLogs/ns/web/app?tailLines=1", code: 200, body: "three\n"},
		{name: "legacy tail all", path: "/containerLogs/ns/web/app?tail=all", code: 200, body: "one\ntwo\nthree\n"},
		{name: "limit bytes", path: "/containerLogs/ns/web/app?limitBytes=6", code: 200, body: "one\ntw"},
		{name: "since the future", path: "/containerLogs/ns/web/app?sinceTime=2999-01-01T00:00:00Z", code: 200, body: ""},
		{name: "timestamps", path: "/containerLogs/ns/web/app?timestamps=true", code: 200, match: stamp},
		{name: "previous", path: "/containerLogs/ns/web/app?previous=true", code: 200, body: "previous life\n"},
		{name: "no previous", path: "/containerLogs/ns/web/talker?previous=true", code: 400,
			body: "previous terminated container \"talker\" in pod \"web\" not found"},
		{name: "not started", path: "/containerLogs/ns/web/pending", code: 400,
			body: "container \"pending\" in pod \"web\" is waiting to start: ContainerCreating"},
		{name: "unknown pod", path: "/containerLogs/ns/nope/app", code: 404, body: "pod \"nope\" does not exist"},
		{name: "unknown container", path: "/containerLogs/ns/web/nope", code: 404, body: "container \"nope\" not found in pod \"web\""},
		{name: "bad number", path: "/containerLogs/ns/web/app?tailLines=x", code: 400, body: "{\"message\": \"Unable to decode query.\"}"},
		{name: "negative tail", path: "/containerLogs/ns/web/app?tailLines=-1", code: 422, body: "{\"message\": \"Invalid request.\"}"},
		{name: "both sinces", path: "/containerLogs/ns/web/app?sinceSeconds=5&sinceTime=2020-01-01T00:00:00Z", code: 422, body: "{\"message\": \"Invalid request.\"}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := k.get(t, tc.path)
			if code != tc.code {
				t.Fatalf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
			}
			if tc.match != nil {
				if !tc.match.MatchString(body) {
					t.Errorf("GET %s: %q does not match %s", tc.path, body, tc.match)
				}
			} else if body != tc.body {
				t.Errorf("GET %s: %q, want %q", tc.path, body, tc.body)
			}
		})
	}
}

func TestContainerLogsFollowStreams(t *testing.T) {
	k := newKubelet(t)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: k.admin}}
	resp, err := c.Get(k.srv.URL + "/containerLogs/ns/web/slow?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil || first != "first\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	// The first line arrived before the container wrote the second: the
	// stream is flushed as it goes. The stream ends when the container does.
	rest, err := r.ReadString(0)
	if rest != "second\n" {
		t.Errorf("rest of the stream %q (%v), want second", rest, err)
	}
}

func TestExecOverWebSocket(t *testing.T) {
	k := newKubelet(t)
	base := k.srv.URL
	execURL := func(cmd ...string) string {
		q := url.Values{"command": cmd, "stdout": {"true"}, "stderr": {"true"}, "stdin": {"true"}}
		return base + "/exec/ns/web/app?" + q.Encode()
	}
	t.Run("stdin to cat, v5", func(t *testing.T) {
		res := stream(t, k.admin, execURL("cat"), []string{server.ProtocolV5, server.ProtocolV4}, "ping\npong\n")
		if res.protocol != server.ProtocolV5 {
			t.Errorf("protocol %q, want v5", res.protocol)
		}
		if res.stdout != "ping\npong\n" {
			t.Errorf("stdout %q", res.stdout)
		}
		if res.status == nil || res.status.Status != metav1.StatusSuccess {
			t.Errorf("status %+v, want Success", res.status)
		}
	})
	t.Run("exit code, v4", func(t *testing.T) {
		res := stream(t, k.admin, execURL("sh", "-c", "echo out; echo err >&2; exit 3"), []string{server.ProtocolV4}, "")
		if res.protocol != server.ProtocolV4 || res.stdout != "out\n" || res.stderr != "err\n" {
			t.Errorf("protocol %q stdout %q stderr %q", res.protocol, res.stdout, res.stderr)
		}
		st := res.status
		if st == nil || st.Status != metav1.StatusFailure || st.Reason != server.ReasonNonZeroExitCode ||
			st.Details == nil || len(st.Details.Causes) != 1 ||
			st.Details.Causes[0].Type != server.CauseTypeExitCode || st.Details.Causes[0].Message != "3" {
			t.Errorf("status %+v, want NonZeroExitCode with cause ExitCode 3", st)
		}
	})
	tests := []struct {
		name, path string
		code       int
	}{
		{"no command", "/exec/ns/web/app?stdout=true", 400},
		{"no streams", "/exec/ns/web/app?command=true", 400},
		{"unknown pod", "/exec/ns/nope/app?command=true&stdout=true", 404},
		{"unknown container", "/exec/ns/web/nope?command=true&stdout=true", 404},
		{"not an upgrade", "/exec/ns/web/app?command=true&stdout=true", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := k.get(t, tc.path); code != tc.code {
				t.Errorf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
			}
		})
	}
}

func TestAttachStreamsOutput(t *testing.T) {
	k := newKubelet(t)
	res := stream(t, k.admin, k.srv.URL+"/attach/ns/web/slow?stdout=true&stderr=true", []string{server.ProtocolV5}, "")
	// Attached before "second" was written; the stream ends with the container.
	if res.stdout != "second\n" {
		t.Errorf("stdout %q, want second", res.stdout)
	}
	if res.status == nil || res.status.Status != metav1.StatusSuccess {
		t.Errorf("status %+v, want Success", res.status)
	}
}

func TestClientCertificatesAreRequired(t *testing.T) {
	k := newKubelet(t)
	tests := []struct {
		name string
		user string
		orgs []string
		code int
	}{
		{name: "no certificate", code: http.StatusUnauthorized},
		{name: "a node", user: "system:node:other", orgs: []string{"system:nodes"}, code: http.StatusForbidden},
		{name: "the API server", user: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, code: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := k.clientTLS(t, strings.ReplaceAll(tc.user, ":", "-"), tc.orgs...)
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get(k.srv.URL + "/containerLogs/ns/web/app")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}
}

func TestReadOnlyPort(t *testing.T) {
	k := newKubelet(t)
	k.metrics.ObservePodStart(1500 * time.Millisecond)
	ro := httptestServer(t, server.ReadOnlyHandler(k.config(t)))
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(ro + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return b.String()
	}
	if got := get("/healthz"); got != "ok" {
		t.Errorf("/healthz %q", got)
	}
	var pods corev1.PodList
	if err := json.Unmarshal([]byte(get("/pods")), &pods); err != nil || pods.Kind != "PodList" || pods.APIVersion != "v1" || len(pods.Items) != 1 {
		t.Errorf("/pods: %v %+v", err, pods.TypeMeta)
	}
	var spec server.MachineInfo
	if err := json.Unmarshal([]byte(get("/spec")), &spec); err != nil || spec.NumCores < 1 || spec.MemoryCapacity == 0 {
		t.Errorf("/spec: %v %+v", err, spec)
	}
	var sum server.Summary
	if err := json.Unmarshal([]byte(get("/stats/summary")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Node.NodeName != "node1" || sum.Node.CPU == nil || sum.Node.CPU.UsageCoreNanoSeconds == nil ||
		sum.Node.Memory == nil || sum.Node.Memory.WorkingSetBytes == nil {
		t.Errorf("node stats %+v", sum.Node)
	}
	if len(sum.Pods) != 1 || sum.Pods[0].PodRef.UID != "uid-web" || sum.Pods[0].Memory == nil {
		t.Fatalf("pod stats %+v", sum.Pods)
	}
	names := map[string]bool{}
	for _, c := range sum.Pods[0].Containers {
		names[c.Name] = c.CPU != nil && c.Memory != nil && *c.Memory.WorkingSetBytes <= *c.Memory.UsageBytes
	}
	if !names["app"] || !names["talker"] || names["pending"] {
		t.Errorf("container stats %v, want app and talker with cpu and memory", names)
	}
	// A second sample has a rate.
	if err := json.Unmarshal([]byte(get("/stats/summary")), &sum); err != nil || sum.Node.CPU.UsageNanoCores == nil {
		t.Errorf("second summary: %v, node cpu %+v", err, sum.Node.CPU)
	}
	m := get("/metrics")
	for _, want := range []string{
		"kubelet_running_pods 1",
		`kubelet_running_containers{container_state="running"} `,
		"kubelet_pod_start_duration_seconds_count 1",
		`kubelet_pod_start_duration_seconds_bucket{le="2"} 1` + "",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
}

func TestExecTTYDeliversResizes(t *testing.T) {
	k := newKubelet(t)
	// The fake's commands ignore terminals, so a hook reports what the
	// runtime was given.
	k.rt.ExecHook = func(id string, opts runtime.ExecOptions) (int, bool) {
		if len(opts.Cmd) == 0 || opts.Cmd[0] != "stty" {
			return 0, false
		}
		select {
		case size := <-opts.Resize:
			fmt.Fprintf(opts.Stdout, "%d %d tty=%v stderr=%v\n", size.Height, size.Width, opts.TTY, opts.Stderr != nil)
			return 0, true
		case <-time.After(10 * time.Second):
			return 1, true
		}
	}
	d := websocket.Dialer{TLSClientConfig: k.admin, Subprotocols: []string{server.ProtocolV5}}
	u := "wss" + strings.TrimPrefix(k.srv.URL, "https") + "/exec/ns/web/app?command=stty&command=size&stdin=true&stdout=true&stderr=true&tty=true"
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{server.ChannelResize}, `{"Width":120,"Height":40}`...)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if len(msg) > 0 && msg[0] == server.ChannelStdout {
			out.Write(msg[1:])
		}
	}
	if out.String() != "40 120 tty=true stderr=false\n" {
		t.Errorf("stdout %q, want the resize and a TTY without stderr", out.String())
	}
}
