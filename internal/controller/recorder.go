package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Recorder writes core/v1 Events about objects, the form `kubectl
// describe` shows. An event repeated within aggregateWindow updates the
// earlier one (count and lastTimestamp), as client-go's event correlator
// does, instead of adding another.
type Recorder struct {
	Client    Client
	Component string // source.component and reportingController
	Host      string // source.host and reportingInstance (a kubelet's node)
	Log       *logrus.Entry
	// Kinds names the apiVersion and kind of each object type recorded.
	Kinds func(obj runtime.Object) (apiVersion, kind string)

	// mu guards recent: the last event written per object, reason, type
	// and message.
	mu     sync.Mutex
	recent map[string]*corev1.Event
}

// aggregateWindow is how long an event may be counted up, and maxRecent
// how many distinct events a recorder remembers.
const (
	aggregateWindow = 10 * time.Minute
	maxRecent       = 4096
)

// Eventf records an event of type (corev1.EventTypeNormal or Warning) about
// obj. Failures are logged at debug level: events are best effort.
func (r *Recorder) Eventf(ctx context.Context, obj runtime.Object, eventType, reason, format string, args ...interface{}) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	apiVersion, kind := obj.GetObjectKind().GroupVersionKind().ToAPIVersionAndKind()
	if r.Kinds != nil {
		apiVersion, kind = r.Kinds(obj)
	}
	msg := fmt.Sprintf(format, args...)
	now := metav1.NewTime(time.Now())
	key := string(m.GetUID()) + "\x00" + m.GetNamespace() + "/" + m.GetName() + "\x00" + eventType + "\x00" + reason + "\x00" + msg
	if r.countUp(ctx, key, now) {
		return
	}
	ns := m.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", m.GetName(), now.UnixNano()), Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: kind, APIVersion: apiVersion, Namespace: m.GetNamespace(),
			Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()},
		Reason: reason, Message: msg, Type: eventType,
		Source:         corev1.EventSource{Component: r.Component, Host: r.Host},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: r.Component, ReportingInstance: r.Host,
	}
	created, err := r.Client.Create(ctx, ev)
	if err != nil {
		if r.Log != nil {
			r.Log.WithError(err).WithField("reason", reason).Debug("record event")
		}
		return
	}
	r.remember(key, created.(*corev1.Event))
}

// countUp bumps the count of a recent identical event; it reports false
// when there is none (or it could not be updated).
func (r *Recorder) countUp(ctx context.Context, key string, now metav1.Time) bool {
	r.mu.Lock()
	prev := r.recent[key]
	r.mu.Unlock()
	if prev == nil || now.Sub(prev.LastTimestamp.Time) > aggregateWindow {
		return false
	}
	ev := prev.DeepCopy()
	ev.Count++
	ev.LastTimestamp = now
	updated, err := r.Client.Update(ctx, ev)
	if err != nil {
		r.forget(key)
		return false
	}
	r.remember(key, updated.(*corev1.Event))
	return true
}

func (r *Recorder) remember(key string, ev *corev1.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recent == nil || len(r.recent) >= maxRecent {
		r.recent = map[string]*corev1.Event{}
	}
	r.recent[key] = ev
}

func (r *Recorder) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.recent, key)
}
