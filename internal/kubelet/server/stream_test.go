package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// execWatch reports when an Exec returns.
type execWatch struct {
	runtime.Runtime
	returned chan error
}

func (e execWatch) Exec(ctx context.Context, id string, opts runtime.ExecOptions) (int, error) {
	code, err := e.Runtime.Exec(ctx, id, opts)
	e.returned <- err
	return code, err
}

// A client that leaves while its stdin waits for a command that does not
// read it (kubectl exec -i … -- sleep, killed) must end the command: the
// read loop is blocked writing stdin and cannot see the connection close.
func TestExecEndsWhenClientLeavesWithUnreadStdin(t *testing.T) {
	k := newKubelet(t)
	watch := execWatch{Runtime: k.rt, returned: make(chan error, 1)}
	cfg := k.config(t)
	cfg.Runtime = watch
	cfg.Heartbeat = 20 * time.Millisecond
	srv := httptest.NewUnstartedServer(server.Handler(cfg))
	srv.TLS = k.srv.TLS.Clone()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	q := url.Values{"command": {"sleep", "3600"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
	d := websocket.Dialer{TLSClientConfig: k.admin, Subprotocols: []string{server.ProtocolV5}}
	conn, _, err := d.DialContext(t.Context(), "wss"+strings.TrimPrefix(srv.URL, "https")+"/exec/ns/web/app?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the first write blocks the server's read loop
		if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{server.ChannelStdin}, "typed\n"...)); err != nil {
			t.Fatal(err)
		}
	}
	// Leave without a close frame, as a killed kubectl does.
	_ = conn.NetConn().(*tls.Conn).NetConn().Close()
	select {
	case err := <-watch.returned:
		if err == nil {
			t.Errorf("exec returned nil, want the cancellation")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec still runs 10s after its client left")
	}
}

// Exec into or attach to a container that exited (a crash-looping one)
// answers as the kubelet does, before any upgrade, without a runtime ID.
func TestStreamToExitedContainerIsNotFound(t *testing.T) {
	k := newKubelet(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := k.rt.InspectContainer(t.Context(), k.ids["slow"])
		if err != nil {
			t.Fatal(err)
		}
		if st.State != runtime.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container slow still runs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, path := range []string{"/exec/ns/web/slow?command=true&stdout=true", "/attach/ns/web/slow?stdout=true"} {
		code, body := k.get(t, path)
		if code != 404 || body != `container not found ("slow")` {
			t.Errorf("GET %s: %d %q, want 404 container not found", path, code, body)
		}
	}
}

// Resizes sent faster than the runtime applies them end at the client's
// last size, not at one of the first few.
func TestExecTTYKeepsTheLastResize(t *testing.T) {
	k := newKubelet(t)
	k.rt.ExecHook = func(id string, opts runtime.ExecOptions) (int, bool) {
		if len(opts.Cmd) == 0 || opts.Cmd[0] != "stty" {
			return 0, false
		}
		// The stdin that follows the resizes says they were all read.
		if _, err := opts.Stdin.Read(make([]byte, 1)); err != nil {
			return 1, true
		}
		var last runtime.TermSize
		for {
			select {
			case size := <-opts.Resize:
				last = size
				continue
			default:
			}
			break
		}
		fmt.Fprintf(opts.Stdout, "%d %d\n", last.Height, last.Width)
		return 0, true
	}
	d := websocket.Dialer{TLSClientConfig: k.admin, Subprotocols: []string{server.ProtocolV5}}
	u := "wss" + strings.TrimPrefix(k.srv.URL, "https") + "/exec/ns/web/app?command=stty&command=size&stdin=true&stdout=true&tty=true"
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for w := 100; w <= 110; w++ {
		msg := fmt.Sprintf(`{"Width":%d,"Height":40}`, w)
		if err := conn.WriteMessage(websocket.BinaryMessage, append([]byte{server.ChannelResize}, msg...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{server.ChannelStdin, 'x'}); err != nil {
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
	if out.String() != "40 110\n" {
		t.Errorf("stdout %q, want the last size 40 110", out.String())
	}
}
