package strategy

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLeaseValidation(t *testing.T) {
	s := strategyFor("coordination.k8s.io", "leases")
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease", ResourceVersion: "1"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptrTo("node-1"), LeaseDurationSeconds: ptrTo(int32(40))},
	}
	expectErrors(t, s.Validate(lease))
	bad := lease.DeepCopy()
	bad.Spec.LeaseDurationSeconds = ptrTo(int32(0))
	bad.Spec.LeaseTransitions = ptrTo(int32(-1))
	expectErrors(t, s.ValidateUpdate(bad, lease),
		"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
		"spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0")
}

func TestEndpointSlice(t *testing.T) {
	s := strategyFor("discovery.k8s.io", "endpointslices")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default", ResourceVersion: "1"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.5"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptrTo(int32(80))}},
	}
	s.Default(slice)
	if *slice.Ports[0].Protocol != corev1.ProtocolTCP || *slice.Ports[0].Name != "" {
		t.Errorf("port not defaulted: %+v", slice.Ports[0])
	}
	expectErrors(t, s.Validate(slice))

	bad := slice.DeepCopy()
	bad.Endpoints = append(bad.Endpoints, discoveryv1.Endpoint{}, discoveryv1.Endpoint{Addresses: []string{"fd00::1"}})
	expectErrors(t, s.Validate(bad),
		"endpoints[1].addresses: Required value: must contain at least 1 address",
		`endpoints[2].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address`)

	bad = slice.DeepCopy()
	bad.AddressType = ""
	expectErrors(t, s.Validate(bad), "addressType: Required value")

	retyped := slice.DeepCopy()
	retyped.AddressType = discoveryv1.AddressTypeFQDN
	retyped.Endpoints[0].Addresses = []string{"web.example.com"}
	expectErrors(t, s.ValidateUpdate(retyped, slice), `addressType: Invalid value: "FQDN": field is immutable`)
}

func newEventV1() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.17f", Namespace: "default", ResourceVersion: "1"},
		EventTime:           metav1.NewMicroTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		ReportingController: "mizzen.dev/scheduler",
		ReportingInstance:   "scheduler-node-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Note:                "Successfully assigned default/web to node-1",
		Type:                corev1.EventTypeNormal,
	}
}

func TestEventsV1Validation(t *testing.T) {
	s := strategyFor("events.k8s.io", "events")
	expectErrors(t, s.Validate(newEventV1()))

	ev := newEventV1()
	ev.Type = "Info"
	ev.DeprecatedCount = 3
	ev.Action = ""
	expectErrors(t, s.Validate(ev),
		`type: Invalid value: "": has invalid value: Info`,
		`count: Invalid value: "": needs to be unset`,
		"action: Required value")

	old := newEventV1()
	grown := old.DeepCopy()
	grown.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(time.Now())}
	expectErrors(t, s.ValidateUpdate(grown, old))
	grown.Note = "changed"
	expectErrors(t, s.ValidateUpdate(grown, old), `note: Invalid value: "changed": field is immutable`)
}
