package apiclient

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name      string
		frame     string
		typ       watch.EventType
		check     func(any) bool
		badFrame  bool // a decodeError: reported to the watcher
		endStream bool // the stream ended or broke
	}{
		{name: "added", frame: `{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"5"}}}`,
			typ: watch.Added, check: func(o any) bool { p, ok := o.(*corev1.Pod); return ok && p.Name == "p" && p.ResourceVersion == "5" }},
		{name: "bookmark", frame: `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"9"}}}`,
			typ: watch.Bookmark, check: func(o any) bool { p, ok := o.(*corev1.Pod); return ok && p.ResourceVersion == "9" }},
		{name: "error", frame: `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410}}`,
			typ: watch.Error, check: func(o any) bool {
				s, ok := o.(*metav1.Status)
				return ok && s.Code == 410 && s.Reason == metav1.StatusReasonExpired
			}},
		{name: "unknown type", frame: `{"type":"SURPRISE","object":{}}`, badFrame: true},
		{name: "object of the wrong shape", frame: `{"type":"MODIFIED","object":{"metadata":5}}`, badFrame: true},
		{name: "malformed", frame: `{"type":"ADDED","object":{]}`, badFrame: true},
		{name: "end of stream", frame: ``, endStream: true},
		{name: "cut mid-frame", frame: `{"type":"ADDED","obj`, endStream: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeEvent(json.NewDecoder(strings.NewReader(tt.frame)), &corev1.Pod{})
			var de decodeError
			switch {
			case tt.badFrame:
				if !errors.As(err, &de) {
					t.Fatalf("error %v, want a decode error", err)
				}
			case tt.endStream:
				if err == nil || errors.As(err, &de) {
					t.Fatalf("error %v, want a stream error", err)
				}
				if tt.frame == "" && !errors.Is(err, io.EOF) {
					t.Fatalf("error %v, want EOF", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if ev.Type != tt.typ || !tt.check(ev.Object) {
					t.Fatalf("event %s %#v", ev.Type, ev.Object)
				}
			}
		})
	}
}
