package apiserver

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/cache"
	"github.com/mizzen-dev/mizzen/internal/storage"
)

var errNotAcceptableWatch = apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "",
	"only the following media types are accepted for watch: application/json, application/vnd.kubernetes.protobuf", 0, false)

// bookmarkInterval is how often a watch that allows bookmarks gets one.
const bookmarkInterval = 30 * time.Second

// watchSource is the event stream a watch serves.
type watchSource struct {
	events <-chan cache.Event
	// bookmark returns a revision safe to report, when there is one.
	bookmark func() (int64, bool)
	stop     func()
	// initial are sent first as ADDED; initialEnd adds the
	// initial-events-end bookmark after them.
	initial    []runtime.Object
	initialRev int64
	initialEnd bool
	// present converts the source's objects to the requested kind (the
	// cache holds them in their stored form).
	present func(runtime.Object) runtime.Object
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, rq request) {
	out, err := s.codecs.negotiate(r, true)
	if err == nil && out.info.StreamSerializer == nil {
		err = errNotAcceptableWatch
	}
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	o, err := listOptions(r, rq)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	match, err := rest.Filter(rq.kind, o.Namespace, o.Labels, o.Fields)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	bookmarks := q.Get("allowWatchBookmarks") == "true"
	// Without a timeout (or with 0) a watch lasts 30-60 minutes, as
	// Kubernetes' --min-request-timeout makes it.
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			s.codecs.writeError(w, r, apierrors.NewBadRequest("invalid timeoutSeconds: "+t))
			return
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	var initial *bool
	if v := q.Get("sendInitialEvents"); v != "" {
		b := v == "true"
		initial = &b
	}
	src, err := s.watchSource(r.Context(), rq.kind, o, initial, bookmarks)
	if err != nil {
		s.codecs.writeError(w, r, err)
		return
	}
	defer src.stop()
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ws := &watchStream{s: s, w: w, out: out, kind: rq.kind}
	ws.start()
	for _, obj := range src.initial {
		if obj = src.present(obj); match(obj) && !ws.send(watch.Added, obj) {
			return
		}
	}
	if src.initialEnd {
		if !ws.sendBookmark(src.initialRev, true) {
			return
		}
	}
	tick := time.NewTicker(bookmarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !bookmarks {
				continue
			}
			if rev, ok := src.bookmark(); ok && !ws.sendBookmark(rev, false) {
				return
			}
		case ev, ok := <-src.events:
			if !ok {
				return
			}
			if ev.Type != watch.Error {
				ev.Object, ev.Prev = src.present(ev.Object), src.present(ev.Prev)
			}
			t, obj := filterEvent(ev, match)
			if t == "" {
				continue
			}
			if t == watch.Error {
				ws.sendObject(watch.Error, obj)
				return
			}
			if !ws.send(t, obj) {
				return
			}
		}
	}
}

// filterEvent maps an event through a selector: an object that starts or
// stops matching is reported as added or deleted, as Kubernetes does.
func filterEvent(ev cache.Event, match func(runtime.Object) bool) (watch.EventType, runtime.Object) {
	if ev.Type == watch.Error {
		return watch.Error, ev.Object
	}
	cur := match(ev.Object)
	prev := ev.Prev != nil && match(ev.Prev)
	switch ev.Type {
	case watch.Added:
		if cur {
			return watch.Added, ev.Object
		}
	case watch.Deleted:
		if cur || prev {
			return watch.Deleted, ev.Object
		}
	case watch.Modified:
		switch {
		case cur && prev:
			return watch.Modified, ev.Object
		case cur:
			return watch.Added, ev.Object
		case prev:
			return watch.Deleted, ev.Object
		}
	}
	return "", nil
}

// watchSource picks where events come from: the cache, or etcd directly
// for a resourceVersion older than the cache's history.
//
// sendInitialEvents (initial) set asks for the current objects first, then
// a bookmark marking their end; explicitly false, a watch without a
// resourceVersion starts at the current state with no synthetic events.
// Unset, it keeps the legacy behaviour: synthetic ADDED events for rv ""
// and "0", none after a given resourceVersion.
func (s *Server) watchSource(ctx context.Context, k *registry.Kind, o rest.ListOptions, initial *bool, bookmarks bool) (*watchSource, error) {
	res := s.store.Resource(k)
	if initial != nil {
		if o.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			return nil, apierrors.NewBadRequest("sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan")
		}
		if *initial && !bookmarks {
			return nil, apierrors.NewBadRequest("sendInitialEvents is forbidden for watch unless allowWatchBookmarks is set to true")
		}
	}
	sendInitial := initial != nil && *initial
	if sendInitial || (initial == nil && (o.ResourceVersion == "" || o.ResourceVersion == "0")) {
		if err := s.store.WaitFresh(ctx, res, o.ResourceVersion); err != nil {
			return nil, err
		}
		idx, val := rest.IndexHint(o)
		objs, rev, w := res.ListAndWatch(idx, val)
		return &watchSource{events: w.Events(), bookmark: w.Bookmark, stop: w.Stop, initial: objs, initialRev: rev, initialEnd: sendInitial, present: k.Present}, nil
	}
	if o.ResourceVersion == "" || o.ResourceVersion == "0" {
		if err := s.store.WaitFresh(ctx, res, o.ResourceVersion); err != nil {
			return nil, err
		}
		w, err := res.Watch(0)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		return &watchSource{events: w.Events(), bookmark: w.Bookmark, stop: w.Stop, present: k.Present}, nil
	}
	from, err := strconv.ParseInt(o.ResourceVersion, 10, 64)
	if err != nil || from < 0 {
		return nil, apierrors.NewBadRequest("invalid resourceVersion: " + o.ResourceVersion)
	}
	if err := s.store.WaitFresh(ctx, res, o.ResourceVersion); err != nil {
		return nil, err
	}
	w, err := res.Watch(from)
	if err == nil {
		return &watchSource{events: w.Events(), bookmark: w.Bookmark, stop: w.Stop, present: k.Present}, nil
	}
	return s.storageWatch(ctx, k, res, from)
}

// storageWatch streams decoded events straight from etcd.
func (s *Server) storageWatch(ctx context.Context, k *registry.Kind, res *cache.Resource, from int64) (*watchSource, error) {
	ctx, cancel := context.WithCancel(ctx)
	in := s.store.Storage().Watch(ctx, res.Prefix(), from+1)
	out := make(chan cache.Event, 100)
	decode := rest.Decoder(k)
	var last atomic.Int64
	last.Store(from)
	go func() {
		defer close(out)
		for ev := range in {
			var ce cache.Event
			switch ev.Type {
			case storage.Progress:
				continue
			case storage.Error:
				st := toStatus(ev.Err)
				if ev.Err == storage.ErrCompacted {
					st = toStatus(apierrors.NewResourceExpired("too old resource version: " + strconv.FormatInt(from, 10)))
				}
				ce = cache.Event{Type: watch.Error, Object: st}
			case storage.Put:
				obj, err := decode(ev.KV)
				if err != nil {
					continue
				}
				ce = cache.Event{Type: watch.Added, Object: obj, Revision: ev.Revision}
				if len(ev.Prev.Value) > 0 {
					ce.Type = watch.Modified
					ce.Prev, _ = decode(ev.Prev)
				}
			case storage.Delete:
				prev, err := decode(ev.Prev)
				if err != nil {
					continue
				}
				obj := prev.DeepCopyObject()
				metaOf(obj).SetResourceVersion(strconv.FormatInt(ev.Revision, 10))
				ce = cache.Event{Type: watch.Deleted, Object: obj, Prev: prev, Revision: ev.Revision}
			}
			last.Store(ev.Revision)
			select {
			case out <- ce:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Decoder(k) already presents objects as k.
	same := func(obj runtime.Object) runtime.Object { return obj }
	return &watchSource{events: out, stop: cancel, bookmark: func() (int64, bool) { return last.Load(), false }, present: same}, nil
}

// watchStream writes watch events in the negotiated encoding.
type watchStream struct {
	s       *Server
	w       http.ResponseWriter
	out     output
	kind    *registry.Kind
	enc     streaming.Encoder
	flusher http.Flusher
	headers bool // table column definitions were sent
	buf     bytes.Buffer
}

func (ws *watchStream) start() {
	info := ws.out.info
	ct := info.MediaType
	if info.StreamSerializer != nil && info.MediaType == mediaProtobuf {
		ct += ";stream=watch"
	}
	ws.w.Header().Set("Content-Type", ct)
	ws.w.Header().Set("Transfer-Encoding", "chunked")
	ws.w.WriteHeader(http.StatusOK)
	ws.flusher, _ = ws.w.(http.Flusher)
	if ws.flusher != nil {
		ws.flusher.Flush()
	}
	ss := info.StreamSerializer
	ws.enc = streaming.NewEncoder(ss.Framer.NewFrameWriter(ws.w), ss.Serializer)
}

func (ws *watchStream) send(t watch.EventType, obj runtime.Object) bool {
	if ws.out.table != nil {
		tbl := ws.s.table(ws.kind, []runtime.Object{obj}, metaOf(obj).GetResourceVersion(), "", ws.out, ws.headers)
		ws.headers = true
		return ws.sendObject(t, tbl)
	}
	return ws.sendObject(t, obj)
}

func (ws *watchStream) sendBookmark(rev int64, initialEnd bool) bool {
	obj := ws.kind.New()
	obj.GetObjectKind().SetGroupVersionKind(ws.kind.GroupVersionKind())
	m := metaOf(obj)
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return ws.sendObject(watch.Bookmark, obj)
}

func (ws *watchStream) sendObject(t watch.EventType, obj runtime.Object) bool {
	ws.buf.Reset()
	if err := ws.out.info.Serializer.Encode(obj, &ws.buf); err != nil {
		ws.s.log.WithError(err).Debug("encode watch event")
		return false
	}
	ev := &metav1.WatchEvent{Type: string(t), Object: runtime.RawExtension{Raw: ws.buf.Bytes()}}
	if err := ws.enc.Encode(ev); err != nil {
		return false
	}
	if ws.flusher != nil {
		ws.flusher.Flush()
	}
	return true
}
