package rest

import (
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
)

// field returns the addressable struct field name of obj (a pointer to a
// struct), or an invalid value when there is none.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// hasField reports whether obj's type has a top-level field name.
func hasField(obj runtime.Object, name string) bool { return structField(obj, name).IsValid() }

// copyField sets field name of dst to that of src.
func copyField(dst, src runtime.Object, name string) {
	d, s := structField(dst, name), structField(src, name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}

// specChanged reports whether anything outside metadata and status
// differs, which bumps metadata.generation.
func specChanged(a, b runtime.Object) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !equality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return true
		}
	}
	return false
}

func valueOf(obj runtime.Object) reflect.Value { return reflect.ValueOf(obj).Elem() }

func durationSeconds(s int64) time.Duration { return time.Duration(s) * time.Second }
