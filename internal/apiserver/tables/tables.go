// Package tables builds the columns `kubectl get` prints for each kind, the
// same columns Kubernetes prints.
//
// The columns and cells follow Kubernetes' printers
// (pkg/printers/internalversion), generated as the API server generates them:
// with the wide columns included, for kubectl to hide unless -o wide.
package tables

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// For returns the table of a group resource; a zero Table means the
// server's default Name/Age columns.
func For(gr schema.GroupResource) registry.Table {
	return forClock(gr, time.Now)
}

// forClock is For with the clock ages are measured against.
func forClock(gr schema.GroupResource, now func() time.Time) registry.Table {
	p, ok := printers()[gr]
	if !ok {
		return registry.Table{}
	}
	return registry.Table{
		Columns: p.columns,
		Row:     func(obj runtime.Object) []interface{} { return p.row(obj, now()) },
	}
}

// printer is the table of one kind: its columns and the cells of an object
// at a given time.
type printer struct {
	columns []metav1.TableColumnDefinition
	row     func(obj runtime.Object, now time.Time) []interface{}
}

// printers lists the table of every kind that has one. It is built on each
// call so that no caller can change another's columns.
func printers() map[schema.GroupResource]printer {
	in := func(group, resource string) schema.GroupResource {
		return schema.GroupResource{Group: group, Resource: resource}
	}
	return map[schema.GroupResource]printer{
		in("", "namespaces"):                     {namespaceColumns(), rowOf(namespaceRow)},
		in("", "nodes"):                          {nodeColumns(), rowOf(nodeRow)},
		in("", "pods"):                           {podColumns(), rowOf(podRow)},
		in("", "services"):                       {serviceColumns(), rowOf(serviceRow)},
		in("", "endpoints"):                      {endpointsColumns(), rowOf(endpointsRow)},
		in("", "configmaps"):                     {configMapColumns(), rowOf(configMapRow)},
		in("", "secrets"):                        {secretColumns(), rowOf(secretRow)},
		in("", "events"):                         {eventColumns(), rowOf(eventRow)},
		in("", "serviceaccounts"):                {serviceAccountColumns(), rowOf(serviceAccountRow)},
		in("apps", "deployments"):                {deploymentColumns(), rowOf(deploymentRow)},
		in("apps", "replicasets"):                {replicaSetColumns(), rowOf(replicaSetRow)},
		in("apps", "daemonsets"):                 {daemonSetColumns(), rowOf(daemonSetRow)},
		in("batch", "jobs"):                      {jobColumns(), rowOf(jobRow)},
		in("coordination.k8s.io", "leases"):      {leaseColumns(), rowOf(leaseRow)},
		in("discovery.k8s.io", "endpointslices"): {endpointSliceColumns(), rowOf(endpointSliceRow)},
		in("events.k8s.io", "events"):            {eventColumns(), rowOf(eventsV1Row)},
	}
}

// rowOf adapts a row function of one type to any object; an object of
// another type (or a nil pointer) has no cells.
func rowOf[T any, PT interface {
	*T
	runtime.Object
}](f func(obj PT, now time.Time) []interface{}) func(runtime.Object, time.Time) []interface{} {
	return func(obj runtime.Object, now time.Time) []interface{} {
		o, ok := obj.(PT)
		if !ok || o == nil {
			return nil
		}
		return f(o, now)
	}
}

// column is a column definition; wide columns have priority 1.
func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

func nameColumn() metav1.TableColumnDefinition {
	c := column("Name", "string", metav1.ObjectMeta{}.SwaggerDoc()["name"])
	c.Format = "name"
	return c
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
}

// templateColumns are the wide columns of the workload kinds: their pod
// template's containers and images and their selector.
func templateColumns(selector string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		wide(column("Containers", "string", "Names of each container in the template.")),
		wide(column("Images", "string", "Images referenced by each container in the template.")),
		wide(column("Selector", "string", selector)),
	}
}

// age is the time from t to now, or <unknown> when t is unset.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// orNone returns s, or <none> when s is empty.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// listWithMore joins the first few of total items and says how many more
// there are; an empty list is <unset>.
func listWithMore(shown []string, total int) string {
	s := strings.Join(shown, ",")
	if total > len(shown) {
		return fmt.Sprintf("%s + %d more...", s, total-len(shown))
	}
	if s == "" {
		return "<unset>"
	}
	return s
}

// maxListed is how many items a list cell shows before "+ N more...".
const maxListed = 3
