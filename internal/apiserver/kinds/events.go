package kinds

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiserver/convert"
)

func eventToCore(obj runtime.Object) runtime.Object {
	return convert.EventToCore(obj.(*eventsv1.Event))
}

func eventFromCore(obj runtime.Object) runtime.Object {
	return convert.EventFromCore(obj.(*corev1.Event))
}
