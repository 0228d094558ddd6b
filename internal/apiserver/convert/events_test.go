package convert

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEventRoundTrip(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 0))
	e := &eventsv1.Event{
		TypeMeta:            metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta:          metav1.ObjectMeta{Name: "e", Namespace: "n"},
		EventTime:           metav1.NewMicroTime(now.Time),
		Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(now.Time)},
		ReportingController: "c", ReportingInstance: "i", Action: "A", Reason: "R",
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "p"}, Related: &corev1.ObjectReference{Kind: "Node", Name: "x"},
		Note: "note", Type: "Warning", DeprecatedSource: corev1.EventSource{Component: "kubelet"},
		DeprecatedFirstTimestamp: now, DeprecatedLastTimestamp: now, DeprecatedCount: 2,
	}
	c := EventToCore(e)
	if c.Message != "note" || c.InvolvedObject.Name != "p" || c.Series.Count != 3 || c.Count != 2 || c.Kind != "Event" || c.APIVersion != "v1" {
		t.Fatalf("core: %+v", c)
	}
	if back := EventFromCore(c); !equality.Semantic.DeepEqual(back, e) {
		t.Fatalf("round trip changed the event:\n%+v\n%+v", back, e)
	}
}
