// Package strategy holds the defaulting and validation of each kind, as
// Kubernetes' registry strategies do it.
//
// The rules, field paths and messages follow k8s.io/kubernetes
// (pkg/apis/*/v1 defaults, pkg/apis/*/validation and pkg/registry/*
// strategies) for the v1 types mizzen serves, so clients see the errors
// they would see from a real cluster.
package strategy

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// For returns the strategy of a group resource. Unknown resources get an
// empty strategy.
func For(gr schema.GroupResource) registry.Strategy {
	switch gr.Group {
	case "":
		return coreStrategy(gr.Resource)
	case "apps":
		return appsStrategy(gr.Resource)
	case "batch":
		if gr.Resource == "jobs" {
			return jobStrategy()
		}
	case "coordination.k8s.io":
		if gr.Resource == "leases" {
			return leaseStrategy()
		}
	case "discovery.k8s.io":
		if gr.Resource == "endpointslices" {
			return endpointSliceStrategy()
		}
	case "events.k8s.io":
		if gr.Resource == "events" {
			return eventsV1Strategy()
		}
	}
	return registry.Strategy{}
}

func coreStrategy(resource string) registry.Strategy {
	switch resource {
	case "namespaces":
		return namespaceStrategy()
	case "nodes":
		return nodeStrategy()
	case "pods":
		return podStrategy()
	case "services":
		return serviceStrategy()
	case "endpoints":
		return endpointsStrategy()
	case "configmaps":
		return configMapStrategy()
	case "secrets":
		return secretStrategy()
	case "events":
		return eventStrategy()
	case "serviceaccounts":
		return serviceAccountStrategy()
	}
	return registry.Strategy{}
}

func appsStrategy(resource string) registry.Strategy {
	switch resource {
	case "deployments":
		return deploymentStrategy()
	case "replicasets":
		return replicaSetStrategy()
	case "daemonsets":
		return daemonSetStrategy()
	}
	return registry.Strategy{}
}

// typed holds the functions of a strategy over one concrete type; strategy
// turns them into a registry.Strategy. Nil functions stay nil.
type typed[T runtime.Object] struct {
	defaults             func(T)
	prepareForCreate     func(T)
	prepareForUpdate     func(obj, old T)
	validate             func(T) field.ErrorList
	validateUpdate       func(obj, old T) field.ErrorList
	validateStatusUpdate func(obj, old T) field.ErrorList
}

func (t typed[T]) strategy() registry.Strategy {
	var s registry.Strategy
	if t.defaults != nil {
		s.Default = mutator(t.defaults)
	}
	if t.prepareForCreate != nil {
		s.PrepareForCreate = mutator(t.prepareForCreate)
	}
	if t.prepareForUpdate != nil {
		fn := t.prepareForUpdate
		s.PrepareForUpdate = func(obj, old runtime.Object) {
			o, ok1 := obj.(T)
			p, ok2 := old.(T)
			if ok1 && ok2 {
				fn(o, p)
			}
		}
	}
	if t.validate != nil {
		fn := t.validate
		s.Validate = func(obj runtime.Object) field.ErrorList {
			o, ok := obj.(T)
			if !ok {
				return wrongType[T](obj)
			}
			return dedupe(fn(o))
		}
	}
	if t.validateUpdate != nil {
		s.ValidateUpdate = updateValidator(t.validateUpdate)
	}
	if t.validateStatusUpdate != nil {
		s.ValidateStatusUpdate = updateValidator(t.validateStatusUpdate)
	}
	return s
}

// mutator adapts fn to runtime.Object; objects of another type are left
// alone (the caller's registry guarantees the type).
func mutator[T runtime.Object](fn func(T)) func(runtime.Object) {
	return func(obj runtime.Object) {
		if o, ok := obj.(T); ok {
			fn(o)
		}
	}
}

func updateValidator[T runtime.Object](fn func(obj, old T) field.ErrorList) func(obj, old runtime.Object) field.ErrorList {
	return func(obj, old runtime.Object) field.ErrorList {
		o, ok := obj.(T)
		if !ok {
			return wrongType[T](obj)
		}
		p, ok := old.(T)
		if !ok {
			return wrongType[T](old)
		}
		return dedupe(fn(o, p))
	}
}

// dedupe drops repeated errors: update validation re-runs create
// validation, which checks some metadata rules a second time.
func dedupe(errs field.ErrorList) field.ErrorList {
	seen := make(map[string]bool, len(errs))
	out := errs[:0]
	for _, e := range errs {
		if key := e.Error(); !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	return out
}

func wrongType[T runtime.Object](obj runtime.Object) field.ErrorList {
	var want T
	return field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("expected %T, got %T", want, obj))}
}
