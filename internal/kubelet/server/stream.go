package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// The WebSocket subprotocols of remote command streams (exec and attach),
// newest first, as k8s.io/apimachinery/pkg/util/remotecommand names them.
const (
	ProtocolV5 = "v5.channel.k8s.io"
	ProtocolV4 = "v4.channel.k8s.io"
)

// The channels of a stream: every binary message starts with one of these
// bytes. Close (v5 only) carries the ID of the channel the sender closes.
const (
	ChannelStdin  byte = 0
	ChannelStdout byte = 1
	ChannelStderr byte = 2
	ChannelError  byte = 3
	ChannelResize byte = 4
	ChannelClose  byte = 255
)

// The reason and cause type of the error channel's Status for a command
// that exits with a non-zero code.
const (
	ReasonNonZeroExitCode = "NonZeroExitCode"
	CauseTypeExitCode     = "ExitCode"
)

// streamOptions are the stdio a client asks for.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
	command                    []string
}

// parseStreamQuery reads exec and attach parameters.
func parseStreamQuery(r *http.Request, exec bool) (streamOptions, error) {
	q := r.URL.Query()
	var o streamOptions
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"stdin", &o.stdin}, {"stdout", &o.stdout}, {"stderr", &o.stderr}, {"tty", &o.tty}} {
		if v := q.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("invalid %s parameter %q", f.name, v)
			}
			*f.dst = b
		}
	}
	o.command = q["command"]
	if exec && len(o.command) == 0 {
		return o, errors.New("you must specify at least one command for the container")
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	if o.tty {
		o.stderr = false // a terminal has one output
	}
	return o, nil
}

var upgrader = websocket.Upgrader{
	Subprotocols: []string{ProtocolV5, ProtocolV4},
	// Clients authenticate with certificates, not cookies, so the origin
	// check that protects browsers has nothing to protect.
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
}

// session is one remote command stream over a WebSocket.
type session struct {
	conn *websocket.Conn
	v5   bool
	wmu  sync.Mutex // serializes writes to conn

	stdin  *io.PipeReader // nil unless the client sends stdin
	stdinW *io.PipeWriter
	resize chan runtime.TermSize // closed by the read loop when it ends
	gone   chan struct{}         // closed when the read loop ends: the client left

	// lost is closed by heartbeat when a ping cannot be written: the client
	// left though the read loop, blocked writing stdin nobody reads, has
	// not seen it.
	lost  chan struct{}
	ended chan struct{} // closed by finish; stops the heartbeat
}

// defaultHeartbeat is how often a stream pings its client to notice one
// that left.
const defaultHeartbeat = 5 * time.Second

// upgrade switches the request to a WebSocket session.
func upgrade(w http.ResponseWriter, r *http.Request, o streamOptions, heartbeat time.Duration) (*session, error) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	s := &session{conn: conn, v5: conn.Subprotocol() == ProtocolV5,
		resize: make(chan runtime.TermSize, 4), gone: make(chan struct{}),
		lost: make(chan struct{}), ended: make(chan struct{})}
	if o.stdin {
		s.stdin, s.stdinW = io.Pipe()
	}
	go s.readLoop()
	go s.heartbeat(heartbeat)
	// The kubelet sends an empty message on the lowest writable channel to
	// say the stream is ready.
	switch {
	case o.stdout:
		_ = s.write(ChannelStdout, nil)
	case o.stderr:
		_ = s.write(ChannelStderr, nil)
	default:
		_ = s.write(ChannelError, nil)
	}
	return s, nil
}

// write sends data on channel ch.
func (s *session) write(ch byte, data []byte) error {
	msg := make([]byte, 1+len(data))
	msg[0] = ch
	copy(msg[1:], data)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.conn.WriteMessage(websocket.BinaryMessage, msg)
}

// readLoop dispatches the client's messages until the connection ends.
func (s *session) readLoop() {
	defer close(s.gone)
	defer close(s.resize)
	defer func() {
		if s.stdinW != nil {
			_ = s.stdinW.Close()
		}
	}()
	for {
		typ, msg, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.BinaryMessage || len(msg) == 0 {
			continue
		}
		switch ch, data := msg[0], msg[1:]; ch {
		case ChannelStdin:
			if s.stdinW != nil && len(data) > 0 {
				_, _ = s.stdinW.Write(data)
			}
		case ChannelResize:
			var size struct{ Width, Height uint16 }
			if json.Unmarshal(data, &size) == nil {
				s.sendResize(runtime.TermSize{Width: uint(size.Width), Height: uint(size.Height)})
			}
		case ChannelClose:
			if s.v5 && len(data) > 0 && data[0] == ChannelStdin && s.stdinW != nil {
				_ = s.stdinW.Close()
			}
		}
	}
}

// sendResize queues a terminal size without blocking stdin behind
// resizes: when the queue is full the oldest size gives way, so the
// terminal ends at the client's last size.
func (s *session) sendResize(size runtime.TermSize) {
	for {
		select {
		case s.resize <- size:
			return
		default:
		}
		select {
		case <-s.resize:
		default:
		}
	}
}

// heartbeat pings the client every period until the session ends. The
// read loop blocks while the command does not read its stdin, and would
// not see the client leave; a ping that fails to be written does (a write
// that times out only says the client reads slowly).
func (s *session) heartbeat(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.gone:
			return
		case <-s.ended:
			return
		}
		err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(period))
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			close(s.lost)
			return
		}
	}
}

// clientGone reports whether the client left.
func (s *session) clientGone() bool {
	select {
	case <-s.gone:
		return true
	case <-s.lost:
		return true
	default:
		return false
	}
}

// channelWriter writes to one channel of a session.
type channelWriter struct {
	s  *session
	ch byte
}

func (w channelWriter) Write(b []byte) (int, error) {
	if err := w.s.write(w.ch, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// finish reports how the command ended on the error channel (a v4
// metav1.Status) and closes the connection.
func (s *session) finish(code int, err error) {
	close(s.ended)
	var st metav1.Status
	switch {
	case err != nil:
		st = apierrors.NewInternalError(err).Status()
	case code != 0:
		st = metav1.Status{
			Status: metav1.StatusFailure,
			Reason: ReasonNonZeroExitCode,
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: CauseTypeExitCode, Message: strconv.Itoa(code)},
			}},
			Message: fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
		}
	default:
		st = metav1.Status{Status: metav1.StatusSuccess}
	}
	if b, jerr := json.Marshal(st); jerr == nil {
		_ = s.write(ChannelError, b)
	}
	s.wmu.Lock()
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.wmu.Unlock()
	if s.stdin != nil {
		_ = s.stdin.Close() // unblocks a read loop writing stdin nobody reads
	}
	// Give the client a moment to answer the close before dropping the
	// connection; the read loop ends on its answer or on our close.
	select {
	case <-s.gone:
	case <-time.After(time.Second):
	}
	_ = s.conn.Close()
}
