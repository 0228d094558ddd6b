package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// logRequest is a parsed containerLogs query (the fields of PodLogOptions).
type logRequest struct {
	opts       runtime.LogOptions
	previous   bool
	limitBytes int64 // 0: no limit
}

// errInvalidLogQuery is a query that parses but that PodLogOptions
// validation rejects (422 at the kubelet).
var errInvalidLogQuery = errors.New(`{"message": "Invalid request."}`)

// parseLogQuery decodes and validates a containerLogs query as the kubelet
// does, with the legacy "tail" parameter ("all" means no limit).
func parseLogQuery(q url.Values, now time.Time) (logRequest, error) {
	lr := logRequest{opts: runtime.LogOptions{TailLines: -1}}
	bad := errors.New(`{"message": "Unable to decode query."}`)
	boolean := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, bad
		}
		return b, nil
	}
	integer := func(name string) (*int64, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, bad
		}
		return &n, nil
	}
	var err error
	if lr.opts.Follow, err = boolean("follow"); err != nil {
		return lr, err
	}
	if lr.opts.Timestamps, err = boolean("timestamps"); err != nil {
		return lr, err
	}
	if lr.previous, err = boolean("previous"); err != nil {
		return lr, err
	}
	if tail := q.Get("tail"); tail != "" && q.Get("tailLines") == "" {
		q = cloneWith(q, "tailLines", tail)
		if tail == "all" {
			q.Del("tailLines")
		}
	}
	tail, err := integer("tailLines")
	if err != nil {
		return lr, err
	}
	limit, err := integer("limitBytes")
	if err != nil {
		return lr, err
	}
	since, err := integer("sinceSeconds")
	if err != nil {
		return lr, err
	}
	var sinceTime time.Time
	if v := q.Get("sinceTime"); v != "" {
		if sinceTime, err = time.Parse(time.RFC3339, v); err != nil {
			return lr, bad
		}
	}
	switch {
	case tail != nil && *tail < 0, limit != nil && *limit < 1, since != nil && *since < 1,
		since != nil && !sinceTime.IsZero():
		return lr, errInvalidLogQuery
	}
	if tail != nil {
		lr.opts.TailLines = int(*tail)
	}
	if limit != nil {
		lr.limitBytes = *limit
	}
	if since != nil {
		lr.opts.Since = now.Add(-time.Duration(*since) * time.Second)
	}
	if !sinceTime.IsZero() {
		lr.opts.Since = sinceTime
	}
	return lr, nil
}

func cloneWith(q url.Values, key, value string) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = v
	}
	c.Set(key, value)
	return c
}

// containerLogs serves GET /containerLogs/{namespace}/{pod}/{container}.
func (s *server) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, podName, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	lr, err := parseLogQuery(r.URL.Query(), time.Now())
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errInvalidLogQuery) {
			code = http.StatusUnprocessableEntity
		}
		httpError(w, err.Error(), code)
		return
	}
	pod := s.pod(ns, podName)
	if pod == nil {
		httpError(w, fmt.Sprintf("pod %q does not exist", podName), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, name) {
		httpError(w, fmt.Sprintf("container %q not found in pod %q", name, podName), http.StatusNotFound)
		return
	}
	id, err := s.cfg.Container(ns, podName, name, lr.previous)
	switch {
	case errors.Is(err, runtime.ErrNotFound) && lr.previous:
		httpError(w, fmt.Sprintf("previous terminated container %q in pod %q not found", name, podName), http.StatusBadRequest)
		return
	case errors.Is(err, runtime.ErrNotFound):
		httpError(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", name, podName), http.StatusBadRequest)
		return
	case err != nil:
		httpError(w, err.Error(), http.StatusInternalServerError)
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	w.Header().Set("Content-Type", "text/plain")
	out := &streamWriter{w: w, rc: http.NewResponseController(w), flush: lr.opts.Follow}
	var dst io.Writer = out
	if lr.limitBytes > 0 {
		dst = &limitWriter{w: out, left: lr.limitBytes, done: cancel}
	}
	err = s.cfg.Runtime.Logs(ctx, id, lr.opts, dst, dst)
	if err != nil && ctx.Err() == nil {
		if !out.wrote {
			httpError(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.WithError(err).WithField("container", ns+"/"+podName+"/"+name).Debug("log stream ended")
	}
	if !out.wrote {
		w.WriteHeader(http.StatusOK)
	}
}

// streamWriter writes a log stream to the response, one writer at a time,
// flushing each write when following.
type streamWriter struct {
	mu    sync.Mutex // guards the fields and serializes writes
	w     io.Writer
	rc    *http.ResponseController
	flush bool
	wrote bool
}

func (s *streamWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrote = true
	n, err := s.w.Write(b)
	if err == nil && s.flush {
		err = s.rc.Flush()
	}
	return n, err
}

// limitWriter passes on at most left bytes, then calls done to end the
// stream.
type limitWriter struct {
	mu   sync.Mutex // guards left
	w    io.Writer
	left int64
	done func()
}

func (l *limitWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left <= 0 {
		l.done()
		return 0, io.ErrShortWrite
	}
	full := len(b)
	if int64(len(b)) > l.left {
		b = b[:l.left]
	}
	n, err := l.w.Write(b)
	l.left -= int64(n)
	if err != nil {
		return n, err
	}
	if l.left <= 0 {
		l.done()
		if n < full {
			return n, io.ErrShortWrite
		}
	}
	return full, nil
}
