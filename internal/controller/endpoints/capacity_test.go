package endpoints

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

func TestEndpointsTruncatedAtCapacity(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	for i := 0; i < 1100; i++ {
		f.pod(pod(fmt.Sprintf("p%04d", i), fmt.Sprintf("10.42.%d.%d", i/250, i%250+1), i < 900))
	}
	f.sync("ns/web")
	ep := f.endpoints("ns", "web")
	if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 900 || len(ep.Subsets[0].NotReadyAddresses) != 100 {
		t.Fatalf("got %d subsets, want 900 ready and 100 not ready", len(ep.Subsets))
	}
	if ep.Annotations[overCapacityAnnotation] != "truncated" {
		t.Errorf("annotations %v", ep.Annotations)
	}
	f.fake.Reset()
	f.sync("ns/web")
	if a := f.fake.Actions(); len(a) != 0 {
		t.Errorf("truncated endpoints rewritten: %d writes", len(a))
	}
	// Back under capacity, the annotation goes.
	for i := 0; i < 200; i++ {
		f.res.Resource(corev1.Resource("pods")).Remove("ns", fmt.Sprintf("p%04d", i))
	}
	f.sync("ns/web")
	if ep := f.endpoints("ns", "web"); ep.Annotations[overCapacityAnnotation] != "" {
		t.Errorf("annotation kept: %v", ep.Annotations)
	}
}

func TestSliceEndpointZoneFromNode(t *testing.T) {
	f := newFixture(t)
	f.res.Resource(corev1.Resource("nodes")).Put(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}}})
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.pod(pod("a", "10.42.0.1", true))
	f.sync("ns/web")
	sl := f.slices("ns", "web")
	if len(sl) != 1 || sl[0].Endpoints[0].Zone == nil || *sl[0].Endpoints[0].Zone != "z1" {
		t.Fatalf("slices %+v", sl)
	}
}

func TestWriteFailures(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantErr   bool
		wantEvent string
	}{
		{"server error retried with an event", apierrors.NewInternalError(errors.New("boom")), true, "FailedToCreateEndpoint"},
		{"conflict retried quietly", apierrors.NewConflict(corev1.Resource("endpoints"), "web", errors.New("stale")), true, ""},
		{"terminating namespace not retried", apierrors.NewForbidden(corev1.Resource("endpoints"), "web", errors.New("namespace ns is being terminated")), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.Err = func(a controllertest.Action) error {
				if a.Verb == "create" && a.Resource != "events" {
					return tt.err
				}
				return nil
			}
			f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
			err := f.c.sync(context.Background(), "ns/web")
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync error %v, want error %t", err, tt.wantErr)
			}
			var reasons []string
			for _, a := range f.fake.Actions() {
				if ev, ok := a.Object.(*corev1.Event); ok {
					reasons = append(reasons, ev.Reason)
				}
			}
			want := []string{}
			if tt.wantEvent != "" {
				want = append(want, tt.wantEvent)
			}
			if fmt.Sprint(reasons) != fmt.Sprint(want) {
				t.Errorf("events %v, want %v", reasons, want)
			}
		})
	}
}
