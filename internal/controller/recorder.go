package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Recorder writes core/v1 Events about objects, the form `kubectl
// describe` shows.
type Recorder struct {
	Client    Client
	Component string // source.component and reportingController
	Log       *logrus.Entry
	// Kinds names the apiVersion and kind of each object type recorded.
	Kinds func(obj runtime.Object) (apiVersion, kind string)
}

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
	now := metav1.NewTime(time.Now())
	ns := m.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", m.GetName(), now.UnixNano()), Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: kind, APIVersion: apiVersion, Namespace: m.GetNamespace(),
			Name: m.GetName(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion()},
		Reason: reason, Message: fmt.Sprintf(format, args...), Type: eventType,
		Source:         corev1.EventSource{Component: r.Component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: r.Component, ReportingInstance: r.Component,
	}
	if _, err := r.Client.Create(ctx, ev); err != nil && r.Log != nil {
		r.Log.WithError(err).WithField("reason", reason).Debug("record event")
	}
}
