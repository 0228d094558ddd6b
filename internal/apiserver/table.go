package apiserver

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"time"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "Name must be unique within a namespace."},
	{Name: "Age", Type: "string", Description: "CreationTimestamp is a timestamp representing the server time when this object was created."},
}

func defaultRow(obj runtime.Object) []interface{} {
	m := metaOf(obj)
	age := "<unknown>"
	if ts := m.GetCreationTimestamp(); !ts.IsZero() {
		age = duration.HumanDuration(time.Since(ts.Time))
	}
	return []interface{}{m.GetName(), age}
}

// table converts objects to the Table `kubectl get` prints.
func (s *Server) table(k *registry.Kind, objs []runtime.Object, rv, cont string, out output, noHeaders bool) *metav1.Table {
	cols, row := k.Table.Columns, k.Table.Row
	if cols == nil || row == nil {
		cols, row = defaultColumns, defaultRow
	}
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: out.table.String(), Kind: "Table"},
		ListMeta: metav1.ListMeta{ResourceVersion: rv, Continue: cont},
		Rows:     make([]metav1.TableRow, 0, len(objs)),
	}
	if !noHeaders {
		t.ColumnDefinitions = cols
	}
	for _, obj := range objs {
		tr := metav1.TableRow{Cells: row(obj)}
		switch out.includeObject {
		case metav1.IncludeObject:
			tr.Object.Raw, _ = json.Marshal(obj)
		case metav1.IncludeMetadata, "":
			pom := &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: out.table.String(), Kind: "PartialObjectMetadata"},
				ObjectMeta: objectMeta(obj),
			}
			tr.Object.Raw, _ = json.Marshal(pom)
		}
		t.Rows = append(t.Rows, tr)
	}
	return t
}

// metaOf returns the ObjectMeta of a registered object.
func metaOf(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		return &metav1.ObjectMeta{}
	}
	return m
}

// objectMeta returns a copy of the ObjectMeta of a registered object.
func objectMeta(obj runtime.Object) metav1.ObjectMeta {
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return *om
		}
	}
	return metav1.ObjectMeta{}
}
