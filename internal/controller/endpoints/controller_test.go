package endpoints

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/controller/controllertest"
)

type fixture struct {
	t    *testing.T
	res  controller.MemoryResources
	fake *controllertest.Fake
	c    *Controller
}

func newFixture(t *testing.T) *fixture {
	res := controller.MemoryResources{}
	fake := controllertest.New(res)
	log := logrus.New()
	log.SetOutput(io.Discard)
	c := New(controller.Env{Resources: res, Client: fake, Log: logrus.NewEntry(log)})
	return &fixture{t: t, res: res, fake: fake, c: c}
}

func (f *fixture) service(svc *corev1.Service) { f.res.Resource(corev1.Resource("services")).Put(svc) }
func (f *fixture) pod(p *corev1.Pod)           { f.res.Resource(corev1.Resource("pods")).Put(p) }

func (f *fixture) sync(key string) {
	f.t.Helper()
	if err := f.c.sync(context.Background(), key); err != nil {
		f.t.Fatalf("sync %s: %v", key, err)
	}
}

func (f *fixture) endpoints(ns, name string) *corev1.Endpoints {
	f.t.Helper()
	ep, ok := f.c.endpoints.Get(ns, name)
	if !ok {
		f.t.Fatalf("no endpoints %s/%s", ns, name)
	}
	return ep
}

func (f *fixture) slices(ns, name string) []*discoveryv1.EndpointSlice {
	return f.c.serviceSlices(ns, name)
}

func svc(name string, sel map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"team": "a"}},
		Spec:       corev1.ServiceSpec{Selector: sel, Ports: ports, ClusterIP: "10.43.0.20"},
	}
}

func port(name string, p int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, TargetPort: target, Protocol: corev1.ProtocolTCP}
}

type podOpt func(*corev1.Pod)

func pod(name, ip string, ready bool, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func containerPort(name string, n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP})
	}
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func addr(p *corev1.Pod) corev1.EndpointAddress {
	n := p.Spec.NodeName
	return corev1.EndpointAddress{IP: p.Status.PodIP, NodeName: &n, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
}

func epPort(name string, n int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: n, Protocol: corev1.ProtocolTCP}
}

var web = map[string]string{"app": "web"}

func TestEndpointsSubsets(t *testing.T) {
	ready := pod("a", "10.42.0.1", true, containerPort("http", 8080), containerPort("metrics", 9100))
	ready2 := pod("b", "10.42.0.2", true, containerPort("http", 8081))
	notReady := pod("c", "10.42.0.3", false, containerPort("http", 8080))
	noIP := pod("d", "", true, containerPort("http", 8080))
	noPort := pod("e", "10.42.0.5", true)
	term := pod("f", "10.42.0.6", true, containerPort("http", 8080), terminating)
	done := pod("g", "10.42.0.7", false, containerPort("http", 8080), func(p *corev1.Pod) {
		p.Spec.RestartPolicy, p.Status.Phase = corev1.RestartPolicyNever, corev1.PodSucceeded
	})
	hostname := pod("h", "10.42.0.8", true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "h0", "web" })
	withHost := addr(hostname)
	withHost.Hostname = "h0"
	tests := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want []corev1.EndpointSubset
	}{
		{"ready and not ready", svc("web", web, port("", 80, intstr.FromInt32(8080))),
			[]*corev1.Pod{ready, notReady, noIP},
			[]corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(ready)}, NotReadyAddresses: []corev1.EndpointAddress{addr(notReady)}, Ports: []corev1.EndpointPort{epPort("", 8080)}}}},
		{"named port resolved per pod", svc("web", web, port("", 80, intstr.FromString("http"))),
			[]*corev1.Pod{ready, ready2, noPort},
			[]corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr(ready)}, Ports: []corev1.EndpointPort{epPort("", 8080)}},
				{Addresses: []corev1.EndpointAddress{addr(ready2)}, Ports: []corev1.EndpointPort{epPort("", 8081)}},
			}},
		{"ports grouped by address set", svc("web", web, port("http", 80, intstr.FromString("http")), port("metrics", 9100, intstr.FromString("metrics"))),
			[]*corev1.Pod{ready, notReady},
			[]corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr(ready)}, NotReadyAddresses: []corev1.EndpointAddress{addr(notReady)}, Ports: []corev1.EndpointPort{epPort("http", 8080)}},
				{Addresses: []corev1.EndpointAddress{addr(ready)}, Ports: []corev1.EndpointPort{epPort("metrics", 9100)}},
			}},
		{"terminating and finished pods left out", svc("web", web, port("", 80, intstr.FromInt32(8080))),
			[]*corev1.Pod{term, done},
			nil},
		{"publishNotReadyAddresses keeps terminating and not-ready pods ready", func() *corev1.Service {
			s := svc("web", web, port("", 80, intstr.FromInt32(8080)))
			s.Spec.PublishNotReadyAddresses = true
			return s
		}(), []*corev1.Pod{term, notReady},
			[]corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(notReady), addr(term)}, Ports: []corev1.EndpointPort{epPort("", 8080)}}}},
		{"hostname when subdomain names the service", svc("web", web, port("", 80, intstr.FromInt32(80))),
			[]*corev1.Pod{hostname},
			[]corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{withHost}, Ports: []corev1.EndpointPort{epPort("", 80)}}}},
		{"headless without ports", func() *corev1.Service {
			s := svc("web", web)
			s.Spec.ClusterIP = corev1.ClusterIPNone
			return s
		}(), []*corev1.Pod{ready},
			[]corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr(ready)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.service(tt.svc)
			for _, p := range tt.pods {
				f.pod(p)
			}
			f.sync("ns/web")
			ep := f.endpoints("ns", "web")
			if !apiequality.Semantic.DeepEqual(ep.Subsets, tt.want) {
				t.Errorf("subsets:\n got %+v\nwant %+v", ep.Subsets, tt.want)
			}
			if ep.Labels["team"] != "a" {
				t.Errorf("labels %v, want the service's", ep.Labels)
			}
		})
	}
}

func TestSlicesLabelledOwnedWithConditions(t *testing.T) {
	f := newFixture(t)
	s := svc("web", web, port("http", 80, intstr.FromString("http")))
	f.service(s)
	f.pod(pod("a", "10.42.0.1", true, containerPort("http", 8080)))
	f.pod(pod("b", "10.42.0.2", false, containerPort("http", 8080)))
	f.pod(pod("c", "10.42.0.3", true, containerPort("http", 8080), terminating))
	f.pod(pod("d", "10.42.0.4", true)) // no http port: a slice without ports
	f.sync("ns/web")
	slices := f.slices("ns", "web")
	if len(slices) != 2 {
		t.Fatalf("got %d slices, want 2 (one per port set)", len(slices))
	}
	type cond struct{ ready, serving, terminating bool }
	got := map[string]cond{}
	for _, sl := range slices {
		if sl.GenerateName != "web-" || sl.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("slice %s: generateName %q addressType %q", sl.Name, sl.GenerateName, sl.AddressType)
		}
		if sl.Labels[discoveryv1.LabelServiceName] != "web" || sl.Labels[discoveryv1.LabelManagedBy] != ControllerName || sl.Labels["team"] != "a" {
			t.Errorf("slice %s labels %v", sl.Name, sl.Labels)
		}
		if len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].UID != s.UID || sl.OwnerReferences[0].Kind != "Service" || !*sl.OwnerReferences[0].Controller {
			t.Errorf("slice %s owners %+v", sl.Name, sl.OwnerReferences)
		}
		for _, ep := range sl.Endpoints {
			want := "d"
			if len(sl.Ports) == 1 {
				if *sl.Ports[0].Port != 8080 || *sl.Ports[0].Name != "http" || *sl.Ports[0].Protocol != corev1.ProtocolTCP {
					t.Errorf("ports %+v", sl.Ports)
				}
				want = "abc"
			}
			if !contains(want, ep.TargetRef.Name) || *ep.NodeName != "n1" {
				t.Errorf("endpoint %s (node %s) in slice with ports %v", ep.TargetRef.Name, *ep.NodeName, sl.Ports)
			}
			got[ep.TargetRef.Name] = cond{*ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating}
		}
	}
	want := map[string]cond{"a": {true, true, false}, "b": {false, false, false}, "c": {false, true, true}, "d": {true, true, false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("conditions %v, want %v", got, want)
	}
}

func contains(s, sub string) bool {
	for i := range s {
		if s[i:i+1] == sub {
			return true
		}
	}
	return false
}

func TestNoWriteWhenNothingChanged(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.pod(pod("a", "10.42.0.1", true))
	f.pod(pod("b", "10.42.0.2", false))
	f.sync("ns/web")
	if n := len(f.fake.Actions()); n != 2 {
		t.Fatalf("first sync made %d writes, want 2 (endpoints, slice): %+v", n, f.fake.Actions())
	}
	f.fake.Reset()
	f.sync("ns/web")
	if a := f.fake.Actions(); len(a) != 0 {
		t.Fatalf("second sync wrote %+v", a)
	}
	// A readiness change updates both in place.
	f.pod(pod("b", "10.42.0.2", true))
	f.sync("ns/web")
	for _, a := range f.fake.Actions() {
		if a.Verb != "update" {
			t.Errorf("got %s %s, want updates only", a.Verb, a.Key)
		}
	}
	if n := len(f.fake.Actions()); n != 2 {
		t.Errorf("readiness change made %d writes, want 2", n)
	}
	if ep := f.endpoints("ns", "web"); len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 2 {
		t.Errorf("subsets %+v", ep.Subsets)
	}
}

func TestIgnoredServices(t *testing.T) {
	f := newFixture(t)
	f.service(svc("manual", nil, port("", 80, intstr.FromInt32(80))))
	k := svc("kubernetes", web, port("https", 443, intstr.FromInt32(6443)))
	k.Namespace = "default"
	f.service(k)
	f.pod(pod("a", "10.42.0.1", true))
	f.sync("ns/manual")
	f.sync("default/kubernetes")
	if a := f.fake.Actions(); len(a) != 0 {
		t.Fatalf("wrote %+v", a)
	}
}

func TestServiceDeletedRemovesEndpointsAndSlices(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.pod(pod("a", "10.42.0.1", true))
	f.sync("ns/web")
	f.res.Resource(corev1.Resource("services")).Remove("ns", "web")
	f.fake.Reset()
	f.sync("ns/web")
	if _, ok := f.c.endpoints.Get("ns", "web"); ok {
		t.Error("endpoints still there")
	}
	if s := f.slices("ns", "web"); len(s) != 0 {
		t.Errorf("%d slices still there", len(s))
	}
	if n := len(f.fake.Actions()); n != 2 {
		t.Errorf("%d deletes, want 2", n)
	}
}

func TestPlaceholderSlice(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.sync("ns/web")
	sl := f.slices("ns", "web")
	if len(sl) != 1 || len(sl[0].Endpoints) != 0 || len(sl[0].Ports) != 0 {
		t.Fatalf("slices %+v, want one placeholder", sl)
	}
	if ep := f.endpoints("ns", "web"); len(ep.Subsets) != 0 {
		t.Errorf("subsets %+v, want none", ep.Subsets)
	}
	f.pod(pod("a", "10.42.0.1", true))
	f.fake.Reset()
	f.sync("ns/web")
	sl = f.slices("ns", "web")
	if len(sl) != 1 || len(sl[0].Endpoints) != 1 {
		t.Fatalf("slices %+v, want one with the pod", sl)
	}
}

func TestSlicesHoldAtMost100AndUpdateInPlace(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	for i := 0; i < 250; i++ {
		f.pod(pod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.42.%d.%d", i/200, i%200+1), true))
	}
	f.sync("ns/web")
	sizes := map[int]int{}
	for _, s := range f.slices("ns", "web") {
		sizes[len(s.Endpoints)]++
	}
	if sizes[100] != 2 || sizes[50] != 1 || len(sizes) != 2 {
		t.Fatalf("slice sizes %v, want 100, 100, 50", sizes)
	}
	f.fake.Reset()
	f.res.Resource(corev1.Resource("pods")).Remove("ns", "p007")
	f.sync("ns/web")
	var sliceWrites []string
	for _, a := range f.fake.Actions() {
		if a.Resource == "endpointslices" {
			sliceWrites = append(sliceWrites, a.Verb)
		}
	}
	if fmt.Sprint(sliceWrites) != "[update]" {
		t.Errorf("slice writes %v, want one update", sliceWrites)
	}
	f.fake.Reset()
	f.pod(pod("p300", "10.42.9.9", true))
	f.sync("ns/web")
	for _, a := range f.fake.Actions() {
		if a.Resource == "endpointslices" && a.Verb != "update" {
			t.Errorf("adding a pod: %s %s, want the free room filled", a.Verb, a.Key)
		}
	}
	total := 0
	for _, s := range f.slices("ns", "web") {
		total += len(s.Endpoints)
	}
	if total != 250 {
		t.Errorf("%d endpoints, want 250", total)
	}
}

func TestSliceOfAnotherOwnerReplaced(t *testing.T) {
	f := newFixture(t)
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.pod(pod("a", "10.42.0.1", true))
	f.sync("ns/web")
	old := f.slices("ns", "web")[0]
	// The service is recreated (new UID): its old slice is replaced.
	s := svc("web", web, port("", 80, intstr.FromInt32(8080)))
	s.UID = "uid-new"
	f.service(s)
	f.sync("ns/web")
	sl := f.slices("ns", "web")
	if len(sl) != 1 || sl[0].Name == old.Name || sl[0].OwnerReferences[0].UID != "uid-new" {
		t.Errorf("slices %+v", sl)
	}
}

func TestRunFollowsPods(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	f.service(svc("web", web, port("", 80, intstr.FromInt32(8080))))
	f.service(svc("other", map[string]string{"app": "other"}, port("", 80, intstr.FromInt32(8080))))
	f.pod(pod("a", "10.42.0.1", false))
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("not-ready address", func() bool {
		ep, ok := f.c.endpoints.Get("ns", "web")
		return ok && len(ep.Subsets) == 1 && len(ep.Subsets[0].NotReadyAddresses) == 1
	})
	f.pod(pod("a", "10.42.0.1", true))
	waitFor("ready address", func() bool {
		ep, _ := f.c.endpoints.Get("ns", "web")
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1
	})
	// A label change moves the pod out of the service.
	p := pod("a", "10.42.0.1", true)
	p.Labels = map[string]string{"app": "other"}
	f.pod(p)
	waitFor("moved pod", func() bool {
		web, _ := f.c.endpoints.Get("ns", "web")
		other, ok := f.c.endpoints.Get("ns", "other")
		return len(web.Subsets) == 0 && ok && len(other.Subsets) == 1
	})
	f.res.Resource(corev1.Resource("services")).Remove("ns", "web")
	waitFor("deleted endpoints", func() bool {
		_, ok := f.c.endpoints.Get("ns", "web")
		return !ok && len(f.slices("ns", "web")) == 0
	})
}
