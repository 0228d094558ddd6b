package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/watch"
)

// Watch streams the watch events of the kind of example (e.g.
// &corev1.Pod{}) in namespace ("" for all) matching opts. Event objects
// are decoded into example's Go type; BOOKMARK events come when
// opts.AllowWatchBookmarks is set; an ERROR event carries a *metav1.Status
// (410 Gone/Expired when opts.ResourceVersion is too old: list again).
// Without opts.TimeoutSeconds the server is asked to end the watch after
// a random 5-10 minutes, so watches spread over servers over time.
//
// The channel is closed when the stream ends (server timeout, ERROR,
// broken connection) or ctx is done; the caller then watches again from
// the last resourceVersion it saw.
func (c *Client) Watch(ctx context.Context, example runtime.Object, namespace string, opts metav1.ListOptions) (<-chan watch.Event, error) {
	k, err := c.kindOf(example)
	if err != nil {
		return nil, err
	}
	path, err := resourcePath(k, namespace, "", "")
	if err != nil {
		return nil, err
	}
	opts.Watch = true
	if opts.TimeoutSeconds == nil {
		t := int64(300 + rand.IntN(300))
		opts.TimeoutSeconds = &t
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, done, err := c.send(ctx, request{method: http.MethodGet, path: path, query: listQuery(opts), watch: true})
	if err != nil {
		cancel()
		return nil, err
	}
	ch := make(chan watch.Event)
	go func() {
		defer close(ch)
		defer cancel()
		defer done()
		defer resp.Body.Close()
		gvk := k.GroupVersionKind()
		dec := json.NewDecoder(resp.Body)
		for {
			ev, err := decodeEvent(dec, example)
			if err != nil {
				// A broken connection just ends the stream; a frame that
				// arrived but does not decode is reported, so the caller
				// resynchronises.
				var de decodeError
				if errors.As(err, &de) {
					ev = watch.Event{Type: watch.Error, Object: &metav1.Status{
						TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
						Status:   metav1.StatusFailure, Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
						Message: fmt.Sprintf("GET %s: decode watch event: %v", path, err),
					}}
					select {
					case ch <- ev:
					case <-ctx.Done():
					}
				}
				return
			}
			if ev.Type != watch.Error {
				ev.Object.GetObjectKind().SetGroupVersionKind(gvk)
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// wireEvent is a watch event as the API server frames it in JSON.
type wireEvent struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// decodeError is an event that arrived whole but does not decode.
type decodeError struct{ err error }

func (e decodeError) Error() string { return e.err.Error() }
func (e decodeError) Unwrap() error { return e.err }

// decodeEvent reads the next event and decodes its object.
func decodeEvent(dec *json.Decoder, example runtime.Object) (watch.Event, error) {
	var w wireEvent
	if err := dec.Decode(&w); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return watch.Event{}, decodeError{err}
		}
		return watch.Event{}, err
	}
	switch w.Type {
	case watch.Added, watch.Modified, watch.Deleted, watch.Bookmark:
		obj, err := decodeNew(w.Object, example)
		if err != nil {
			return watch.Event{}, decodeError{fmt.Errorf("%s event: %w", w.Type, err)}
		}
		return watch.Event{Type: w.Type, Object: obj}, nil
	case watch.Error:
		st := &metav1.Status{}
		if err := utiljson.Unmarshal(w.Object, st); err != nil {
			return watch.Event{}, decodeError{fmt.Errorf("ERROR event: %w", err)}
		}
		return watch.Event{Type: watch.Error, Object: st}, nil
	}
	return watch.Event{}, decodeError{fmt.Errorf("unknown event type %q", w.Type)}
}
