package tables

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCoreEventRows(t *testing.T) {
	pulled := corev1.Event{
		ObjectMeta:     meta("web.1828", time.Hour),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{nginx}"},
		Reason:         "Pulled",
		Message:        "Successfully pulled image \"nginx\"\n",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(10 * time.Minute),
		LastTimestamp:  ago(90 * time.Second),
		Count:          4,
		Type:           corev1.EventTypeNormal,
	}
	cases := []struct {
		name string
		edit func(e *corev1.Event)
		want []interface{}
	}{
		{"legacy event", func(*corev1.Event) {},
			[]interface{}{"90s", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
				"Successfully pulled image \"nginx\"", "10m", int64(4), "web.1828"}},
		{"no host", func(e *corev1.Event) { e.Source.Host = "" },
			[]interface{}{"90s", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet",
				"Successfully pulled image \"nginx\"", "10m", int64(4), "web.1828"}},
		{"reported by the new API", func(e *corev1.Event) {
			e.Source = corev1.EventSource{}
			e.ReportingController, e.ReportingInstance = "default-scheduler", "server-1"
			e.FirstTimestamp, e.LastTimestamp, e.Count = metav1.Time{}, metav1.Time{}, 0
			e.EventTime = microAgo(3 * time.Minute)
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node"}
			e.Type, e.Reason = corev1.EventTypeWarning, "FailedScheduling"
		}, []interface{}{"3m", "Warning", "FailedScheduling", "node", "", "default-scheduler, server-1",
			"Successfully pulled image \"nginx\"", "3m", int64(1), "web.1828"}},
		{"series", func(e *corev1.Event) {
			e.Series = &corev1.EventSeries{Count: 12, LastObservedTime: microAgo(20 * time.Second)}
		}, []interface{}{"20s", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
			"Successfully pulled image \"nginx\"", "10m", int64(12), "web.1828"}},
		{"no times", func(e *corev1.Event) {
			e.FirstTimestamp, e.LastTimestamp = metav1.Time{}, metav1.Time{}
		}, []interface{}{"<unknown>", "Normal", "Pulled", "pod/web", "spec.containers{nginx}", "kubelet, node-1",
			"Successfully pulled image \"nginx\"", "<unknown>", int64(4), "web.1828"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := pulled.DeepCopy()
			c.edit(e)
			wantRow(t, eventsGR, e, c.want...)
		})
	}
}

func TestEventsV1RowsLikeCoreEvents(t *testing.T) {
	e := &eventsv1.Event{
		ObjectMeta:          meta("web.1829", time.Hour),
		EventTime:           microAgo(4 * time.Minute),
		Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: microAgo(time.Minute + 5*time.Second)},
		ReportingController: "mizzen.io/agent",
		ReportingInstance:   "node-1",
		Action:              "Pulling",
		Reason:              "BackOff",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
		Note:                "  Back-off restarting failed container  ",
		Type:                corev1.EventTypeWarning,
	}
	wantRow(t, eventsV1GR, e, "65s", "Warning", "BackOff", "pod/web", "spec.containers{app}", "mizzen.io/agent, node-1",
		"Back-off restarting failed container", "4m", int64(3), "web.1829")

	e.Series = nil
	e.DeprecatedSource = corev1.EventSource{Component: "kubelet"}
	e.DeprecatedFirstTimestamp = ago(2 * time.Hour)
	e.DeprecatedLastTimestamp = ago(time.Hour)
	e.DeprecatedCount = 9
	wantRow(t, eventsV1GR, e, "60m", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, node-1",
		"Back-off restarting failed container", "120m", int64(9), "web.1829")
}
