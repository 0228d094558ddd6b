package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// exec serves /exec/{namespace}/{pod}/{container}: it runs the command
// given as repeated command parameters in the container.
func (s *server) exec(w http.ResponseWriter, r *http.Request) { s.stream(w, r, true) }

// attach serves /attach/{namespace}/{pod}/{container}: it connects to the
// container's main process.
func (s *server) attach(w http.ResponseWriter, r *http.Request) { s.stream(w, r, false) }

func (s *server) stream(w http.ResponseWriter, r *http.Request, exec bool) {
	ns, podName, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	o, err := parseStreamQuery(r, exec)
	if err != nil {
		httpError(w, err.Error(), http.StatusBadRequest)
		return
	}
	pod := s.pod(ns, podName)
	if pod == nil {
		httpError(w, "pod does not exist", http.StatusNotFound)
		return
	}
	if !hasContainer(pod, name) {
		httpError(w, fmt.Sprintf("container not found (%q)", name), http.StatusNotFound)
		return
	}
	id, err := s.cfg.Container(ns, podName, name, false)
	if err == nil {
		// The kubelet finds only running containers: one that crashed is
		// not found, rather than an internal error naming its runtime ID.
		var st runtime.ContainerStatus
		if st, err = s.cfg.Runtime.InspectContainer(r.Context(), id); err == nil && st.State != runtime.StateRunning {
			err = runtime.ErrNotRunning
		}
	}
	if errors.Is(err, runtime.ErrNotFound) || errors.Is(err, runtime.ErrNotRunning) {
		httpError(w, fmt.Sprintf("container not found (%q)", name), http.StatusNotFound)
		return
	} else if err != nil {
		httpError(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		httpError(w, "Upgrade request required: only WebSocket streams (v5.channel.k8s.io, v4.channel.k8s.io) are served", http.StatusBadRequest)
		return
	}
	sess, err := upgrade(w, r, o, s.heartbeat)
	if err != nil {
		s.log.WithError(err).Debug("stream upgrade failed")
		return // the upgrader answered the client
	}
	// A hijacked request's context no longer ends with the client, so the
	// read loop's end or a failed heartbeat does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sess.gone:
			cancel()
		case <-sess.lost:
			cancel()
		case <-ctx.Done():
		}
	}()

	var stdin io.Reader
	if o.stdin {
		stdin = sess.stdin
	}
	var stdout, stderr io.Writer
	if o.stdout {
		stdout = channelWriter{sess, ChannelStdout}
	}
	if o.stderr {
		stderr = channelWriter{sess, ChannelStderr}
	}
	var resize <-chan runtime.TermSize
	if o.tty {
		resize = sess.resize
	}
	code := 0
	if exec {
		code, err = s.cfg.Runtime.Exec(ctx, id, runtime.ExecOptions{
			Cmd: o.command, TTY: o.tty, Resize: resize, Stdin: stdin, Stdout: stdout, Stderr: stderr,
		})
	} else {
		err = s.cfg.Runtime.Attach(ctx, id, runtime.AttachOptions{
			Stdin: stdin, Stdout: stdout, Stderr: stderr, TTY: o.tty, Resize: resize,
		})
	}
	if sess.clientGone() {
		sess.finish(0, nil) // the client left; nobody reads the status
		return
	}
	if err != nil {
		s.log.WithError(err).WithField("container", ns+"/"+podName+"/"+name).Debug("stream failed")
	}
	sess.finish(code, err)
}
