package tables

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// now is the time the tests print at.
var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// ago is a timestamp d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func microAgo(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(-d)) }

func meta(name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created)}
}

func ptr[T any](v T) *T { return &v }

// row prints obj with the table of gr at now.
func row(t *testing.T, gr schema.GroupResource, obj runtime.Object) []interface{} {
	t.Helper()
	table := forClock(gr, func() time.Time { return now })
	if table.Row == nil {
		t.Fatalf("no table for %v", gr)
	}
	cells := table.Row(obj)
	if len(cells) != len(table.Columns) {
		t.Fatalf("%v: %d cells for %d columns: %#v", gr, len(cells), len(table.Columns), cells)
	}
	return cells
}

// wantRow compares the cells of obj with want.
func wantRow(t *testing.T, gr schema.GroupResource, obj runtime.Object, want ...interface{}) {
	t.Helper()
	if got := row(t, gr, obj); !reflect.DeepEqual(got, want) {
		t.Errorf("%v row\n got %#v\nwant %#v", gr, got, want)
	}
}

var (
	podsGR            = schema.GroupResource{Resource: "pods"}
	nodesGR           = schema.GroupResource{Resource: "nodes"}
	servicesGR        = schema.GroupResource{Resource: "services"}
	eventsGR          = schema.GroupResource{Resource: "events"}
	eventsV1GR        = schema.GroupResource{Group: "events.k8s.io", Resource: "events"}
	deploymentsGR     = schema.GroupResource{Group: "apps", Resource: "deployments"}
	replicaSetsGR     = schema.GroupResource{Group: "apps", Resource: "replicasets"}
	daemonSetsGR      = schema.GroupResource{Group: "apps", Resource: "daemonsets"}
	jobsGR            = schema.GroupResource{Group: "batch", Resource: "jobs"}
	leasesGR          = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	endpointSlicesGR  = schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}
	endpointsGR       = schema.GroupResource{Resource: "endpoints"}
	namespacesGR      = schema.GroupResource{Resource: "namespaces"}
	configMapsGR      = schema.GroupResource{Resource: "configmaps"}
	secretsGR         = schema.GroupResource{Resource: "secrets"}
	serviceAccountsGR = schema.GroupResource{Resource: "serviceaccounts"}
)

// served lists every kind with a table, with an empty object of its type.
var served = []struct {
	gr  schema.GroupResource
	obj runtime.Object
	// columns names the columns in order; a * marks a wide column.
	columns string
}{
	{namespacesGR, &corev1.Namespace{}, "Name,Status,Age"},
	{nodesGR, &corev1.Node{}, "Name,Status,Roles,Age,Version,*Internal-IP,*External-IP,*OS-Image,*Kernel-Version,*Container-Runtime"},
	{podsGR, &corev1.Pod{}, "Name,Ready,Status,Restarts,Age,*IP,*Node,*Nominated Node,*Readiness Gates"},
	{servicesGR, &corev1.Service{}, "Name,Type,Cluster-IP,External-IP,Port(s),Age,*Selector"},
	{endpointsGR, &corev1.Endpoints{}, "Name,Endpoints,Age"},
	{configMapsGR, &corev1.ConfigMap{}, "Name,Data,Age"},
	{secretsGR, &corev1.Secret{}, "Name,Type,Data,Age"},
	{eventsGR, &corev1.Event{}, "Last Seen,Type,Reason,Object,*Subobject,*Source,Message,*First Seen,*Count,*Name"},
	{serviceAccountsGR, &corev1.ServiceAccount{}, "Name,Secrets,Age"},
	{deploymentsGR, &appsv1.Deployment{}, "Name,Ready,Up-to-date,Available,Age,*Containers,*Images,*Selector"},
	{replicaSetsGR, &appsv1.ReplicaSet{}, "Name,Desired,Current,Ready,Age,*Containers,*Images,*Selector"},
	{daemonSetsGR, &appsv1.DaemonSet{}, "Name,Desired,Current,Ready,Up-to-date,Available,Node Selector,Age,*Containers,*Images,*Selector"},
	{jobsGR, &batchv1.Job{}, "Name,Status,Completions,Duration,Age,*Containers,*Images,*Selector"},
	{leasesGR, &coordinationv1.Lease{}, "Name,Holder,Age"},
	{endpointSlicesGR, &discoveryv1.EndpointSlice{}, "Name,AddressType,Ports,Endpoints,Age"},
	{eventsV1GR, &eventsv1.Event{}, "Last Seen,Type,Reason,Object,*Subobject,*Source,Message,*First Seen,*Count,*Name"},
}

func TestColumnsMatchKubernetes(t *testing.T) {
	integer := map[schema.GroupResource]string{
		replicaSetsGR: "Desired,Current,Ready",
		daemonSetsGR:  "Desired,Current,Ready,Up-to-date,Available",
	}
	for _, s := range served {
		t.Run(s.gr.String(), func(t *testing.T) {
			var got []string
			for _, c := range For(s.gr).Columns {
				name := c.Name
				if c.Priority == 1 {
					name = "*" + name
				} else if c.Priority != 0 {
					t.Errorf("column %s has priority %d", c.Name, c.Priority)
				}
				got = append(got, name)

				wantType := "string"
				if strings.Contains(","+integer[s.gr]+",", ","+c.Name+",") {
					wantType = "integer"
				}
				if c.Type != wantType {
					t.Errorf("column %s has type %q, want %q", c.Name, c.Type, wantType)
				}
				if (c.Format == "name") != (c.Name == "Name") || (c.Format != "" && c.Format != "name") {
					t.Errorf("column %s has format %q", c.Name, c.Format)
				}
				if c.Description == "" {
					t.Errorf("column %s has no description", c.Name)
				}
			}
			if got := strings.Join(got, ","); got != s.columns {
				t.Errorf("columns\n got %s\nwant %s", got, s.columns)
			}
		})
	}
}

func TestEveryRowFillsEveryColumn(t *testing.T) {
	for _, s := range served {
		t.Run(s.gr.String(), func(t *testing.T) {
			row(t, s.gr, s.obj)
		})
	}
}

func TestRowOfAnotherTypeIsEmpty(t *testing.T) {
	for _, s := range served {
		table := For(s.gr)
		if cells := table.Row(&corev1.List{}); cells != nil {
			t.Errorf("%v: cells %#v for a List", s.gr, cells)
		}
		if cells := table.Row(nil); cells != nil {
			t.Errorf("%v: cells %#v for nil", s.gr, cells)
		}
	}
	if cells := For(podsGR).Row((*corev1.Pod)(nil)); cells != nil {
		t.Errorf("cells %#v for a nil pod", cells)
	}
}

func TestUnknownResourceHasNoTable(t *testing.T) {
	for _, gr := range []schema.GroupResource{
		{Resource: "widgets"},
		{Group: "apps", Resource: "statefulsets"},
		{Group: "example.com", Resource: "pods"},
	} {
		if table := For(gr); table.Columns != nil || table.Row != nil {
			t.Errorf("%v: table %+v, want zero", gr, table)
		}
	}
}

func TestTablesDoNotShareColumns(t *testing.T) {
	a := For(podsGR)
	a.Columns[0].Name = "changed"
	if b := For(podsGR); b.Columns[0].Name != "Name" {
		t.Errorf("a change to one table's columns reached another: %q", b.Columns[0].Name)
	}
}

func TestAgeOfUnsetTimestampIsUnknown(t *testing.T) {
	wantRow(t, namespacesGR, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "new"}},
		"new", "", "<unknown>")
}

func TestSmallKindsRows(t *testing.T) {
	wantRow(t, namespacesGR, &corev1.Namespace{ObjectMeta: meta("kube-system", 50*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		"kube-system", "Active", "2d2h")
	wantRow(t, configMapsGR, &corev1.ConfigMap{ObjectMeta: meta("cfg", 90*time.Second),
		Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {0}}},
		"cfg", int64(3), "90s")
	wantRow(t, secretsGR, &corev1.Secret{ObjectMeta: meta("tls", 5*time.Minute), Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}, StringData: map[string]string{"tls.key": "", "ca.crt": ""}},
		"tls", "kubernetes.io/tls", int64(3), "5m")
	wantRow(t, serviceAccountsGR, &corev1.ServiceAccount{ObjectMeta: meta("default", 400*24*time.Hour),
		Secrets: []corev1.ObjectReference{{Name: "token"}}},
		"default", int64(1), "400d")
	wantRow(t, leasesGR, &coordinationv1.Lease{ObjectMeta: meta("kube-scheduler", 3*time.Hour), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("server-1_abc")}},
		"kube-scheduler", "server-1_abc", "3h")
	wantRow(t, leasesGR, &coordinationv1.Lease{ObjectMeta: meta("free", 8*time.Hour)},
		"free", "", "8h")
}
