package rest

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// CreateOptions modify a create.
type CreateOptions struct {
	// DryRun runs every step but the write.
	DryRun bool
	// Trusted skips the kind's validation: for objects the server itself
	// maintains, such as the kubernetes endpoints, which point at the
	// advertise address even when that is a loopback address.
	Trusted bool
}

// Create stores a new object in namespace (ignored for cluster-scoped
// kinds) and returns it as stored.
func (s *Store) Create(ctx context.Context, k *registry.Kind, namespace string, obj runtime.Object, o CreateOptions) (runtime.Object, error) {
	m := accessor(obj)
	if k.Namespaced {
		if m.GetNamespace() != "" && namespace != "" && m.GetNamespace() != namespace {
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if namespace == "" {
			namespace = m.GetNamespace()
		}
		m.SetNamespace(namespace)
	} else {
		m.SetNamespace("")
	}
	generated := m.GetName() == "" && m.GetGenerateName() != ""
	if generated {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}
	m.SetUID(types.UID(uuid.NewUUID()))
	m.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(1e9)))
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	m.SetGeneration(0)
	if hasField(obj, "Spec") {
		m.SetGeneration(1)
	}
	if st := k.Strategy; st.Default != nil {
		st.Default(obj)
	}
	if st := k.Strategy; st.PrepareForCreate != nil {
		st.PrepareForCreate(obj)
	}
	if errs := s.validateCreate(k, obj); len(errs) > 0 && !o.Trusted {
		return nil, apierrors.NewInvalid(k.GroupVersionKind().GroupKind(), m.GetName(), errs)
	}
	if k.Namespaced {
		if err := s.namespaceAdmits(ctx, namespace); err != nil {
			return nil, err
		}
	}
	rs, err := s.admit(ctx, registry.Create, k, obj, nil)
	if err != nil {
		return nil, err
	}
	if o.DryRun {
		rs.abort()
		return obj, nil
	}
	data, err := encode(k, obj)
	if err != nil {
		rs.abort()
		return nil, apierrors.NewInternalError(err)
	}
	rev, err := s.st.Create(ctx, s.key(k, namespace, m.GetName()), data, writeOptions(k)...)
	if err != nil {
		rs.abort()
		if generated && apierrors.IsAlreadyExists(s.storageError(k, m.GetName(), err)) {
			return nil, apierrors.NewGenerateNameConflict(k.GroupResource(), m.GetName(), 1)
		}
		return nil, s.storageError(k, m.GetName(), err)
	}
	rs.commit()
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

func (s *Store) validateCreate(k *registry.Kind, obj runtime.Object) field.ErrorList {
	if k.Strategy.Validate != nil {
		return k.Strategy.Validate(obj)
	}
	nameFn := apivalidation.NameIsDNSSubdomain
	return apivalidation.ValidateObjectMetaAccessor(accessor(obj), k.Namespaced, nameFn, field.NewPath("metadata"))
}

// namespaceAdmits refuses writes into a namespace that does not exist or is
// terminating, as the NamespaceLifecycle admission plugin does.
func (s *Store) namespaceAdmits(ctx context.Context, namespace string) error {
	nsKind, ok := s.reg.Lookup(namespacesGVR)
	if !ok {
		return nil
	}
	res := s.cache.Resource(nsKind.GroupResource())
	obj, found := res.Get(res.Key("", namespace))
	if !found {
		// The cache may lag a namespace created a moment ago.
		got, err := s.Get(ctx, nsKind, "", namespace)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return apierrors.NewNotFound(nsKind.GroupResource(), namespace)
			}
			return err
		}
		obj = got
	}
	if accessor(obj).GetDeletionTimestamp() != nil {
		err := apierrors.NewForbidden(nsKind.GroupResource(), namespace,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", namespace))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace",
			Message: fmt.Sprintf("namespace %s is being terminated", namespace)})
		return err
	}
	return nil
}
