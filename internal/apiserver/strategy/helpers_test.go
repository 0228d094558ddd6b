package strategy

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// strategyFor returns the strategy of a resource the way the registry
// gets it.
func strategyFor(group, resource string) registry.Strategy {
	return For(schema.GroupResource{Group: group, Resource: resource})
}

// expectErrors fails unless errs renders exactly as want, in any order.
// Each want is the text of one error, as `kubectl` shows it:
// "spec.containers: Required value".
func expectErrors(t *testing.T, errs field.ErrorList, want ...string) {
	t.Helper()
	got := make([]string, 0, len(errs))
	for _, e := range errs {
		got = append(got, e.Error())
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// expectError fails unless errs holds an error of type typ at fld whose
// detail starts with detail.
func expectError(t *testing.T, errs field.ErrorList, typ field.ErrorType, fld, detail string) {
	t.Helper()
	for _, e := range errs {
		if e.Type == typ && e.Field == fld && strings.HasPrefix(e.Detail, detail) {
			return
		}
	}
	t.Errorf("no %s error at %s with detail %q in:\n%v", typ, fld, detail, errs)
}
