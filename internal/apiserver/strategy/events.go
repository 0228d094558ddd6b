package strategy

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// Length limits of event fields.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// eventFields are the fields Kubernetes validates on every event, in the
// shape of its internal Event type.
type eventFields struct {
	namespace           string
	involvedNamespace   string
	eventTime           metav1.MicroTime
	reportingController string
	reportingInstance   string
	action              string
	reason              string
	message             string
}

// eventStrategy validates core/v1 events leniently, for the old clients
// that write them.
func eventStrategy() registry.Strategy {
	fields := func(ev *corev1.Event) eventFields {
		return eventFields{
			namespace: ev.Namespace, involvedNamespace: ev.InvolvedObject.Namespace, eventTime: ev.EventTime,
			reportingController: ev.ReportingController, reportingInstance: ev.ReportingInstance,
			action: ev.Action, reason: ev.Reason, message: ev.Message,
		}
	}
	return typed[*corev1.Event]{
		validate: func(ev *corev1.Event) field.ErrorList {
			errs := validateObjectMeta(&ev.ObjectMeta, true, nameIsPathSegment)
			return append(errs, legacyValidateEvent(fields(ev), "reportingComponent")...)
		},
		validateUpdate: func(ev, _ *corev1.Event) field.ErrorList {
			return legacyValidateEvent(fields(ev), "reportingComponent")
		},
	}.strategy()
}

// legacyValidateEvent holds the rules every event passes: a namespace that
// matches the involved object's and, for new-style events (with an event
// time), the reporting fields.
func legacyValidateEvent(ev eventFields, controllerField string) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.eventTime.IsZero() {
		if ev.involvedNamespace == "" {
			if ev.namespace != metav1.NamespaceNone && ev.namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.involvedNamespace, "does not match event.namespace"))
			}
		} else if ev.namespace != ev.involvedNamespace {
			errs = append(errs, field.Invalid(nsPath, ev.involvedNamespace, "does not match event.namespace"))
		}
	} else {
		if ev.involvedNamespace == "" && ev.namespace != metav1.NamespaceDefault && ev.namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(nsPath, ev.involvedNamespace, "does not match event.namespace"))
		}
		if ev.reportingController == "" {
			errs = append(errs, field.Required(field.NewPath(controllerField), ""))
		}
		errs = append(errs, validateQualifiedName(ev.reportingController, field.NewPath(controllerField))...)
		errs = append(errs, requiredWithLimit("reportingInstance", ev.reportingInstance, reportingInstanceLengthLimit)...)
		errs = append(errs, requiredWithLimit("action", ev.action, actionLengthLimit)...)
		errs = append(errs, requiredWithLimit("reason", ev.reason, reasonLengthLimit)...)
		if len(ev.message) > noteLengthLimit {
			errs = append(errs, lengthError("message", noteLengthLimit))
		}
	}
	return append(errs, messages(field.NewPath("namespace"), ev.namespace, nameIsDNSSubdomain(ev.namespace, false))...)
}

func requiredWithLimit(name, value string, limit int) field.ErrorList {
	var errs field.ErrorList
	if value == "" {
		errs = append(errs, field.Required(field.NewPath(name), ""))
	}
	if len(value) > limit {
		errs = append(errs, lengthError(name, limit))
	}
	return errs
}

// eventsV1Strategy validates events.k8s.io/v1 events strictly. Errors use
// the paths Kubernetes reports, which name its internal fields.
func eventsV1Strategy() registry.Strategy {
	return typed[*eventsv1.Event]{
		validate:       validateEventV1,
		validateUpdate: validateEventV1Update,
	}.strategy()
}

func eventsV1Fields(ev *eventsv1.Event) eventFields {
	return eventFields{
		namespace: ev.Namespace, involvedNamespace: ev.Regarding.Namespace, eventTime: ev.EventTime,
		reportingController: ev.ReportingController, reportingInstance: ev.ReportingInstance,
		action: ev.Action, reason: ev.Reason, message: ev.Note,
	}
}

func validateEventV1(ev *eventsv1.Event) field.ErrorList {
	errs := legacyValidateEvent(eventsV1Fields(ev), "reportingController")
	errs = append(errs, validateObjectMeta(&ev.ObjectMeta, true, nameIsDNSSubdomain)...)
	errs = append(errs, validateEventSeries(ev.Series)...)
	if ev.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if ev.Type != corev1.EventTypeNormal && ev.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", ev.Type)))
	}
	if !ev.DeprecatedFirstTimestamp.IsZero() {
		errs = append(errs, unsetError("firstTimestamp"))
	}
	if !ev.DeprecatedLastTimestamp.IsZero() {
		errs = append(errs, unsetError("lastTimestamp"))
	}
	if ev.DeprecatedCount != 0 {
		errs = append(errs, unsetError("count"))
	}
	if ev.DeprecatedSource.Component != "" || ev.DeprecatedSource.Host != "" {
		errs = append(errs, unsetError("source"))
	}
	return errs
}

func validateEventSeries(s *eventsv1.EventSeries) field.ErrorList {
	if s == nil {
		return nil
	}
	var errs field.ErrorList
	if s.Count < 2 {
		errs = append(errs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
	}
	if s.LastObservedTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return errs
}

// validateEventV1Update allows an event's series to grow and little else.
func validateEventV1Update(ev, old *eventsv1.Event) field.ErrorList {
	errs := legacyValidateEvent(eventsV1Fields(ev), "reportingController")
	errs = append(errs, validateObjectMetaUpdate(&ev.ObjectMeta, &old.ObjectMeta)...)
	if !equalSeries(ev.Series, old.Series) {
		errs = append(errs, validateEventSeries(ev.Series)...)
	}
	for _, f := range []struct {
		name     string
		new, old any
	}{
		{"involvedObject", ev.Regarding, old.Regarding},
		{"reason", ev.Reason, old.Reason},
		{"note", ev.Note, old.Note},
		{"source", ev.DeprecatedSource, old.DeprecatedSource},
		{"firstTimestamp", ev.DeprecatedFirstTimestamp, old.DeprecatedFirstTimestamp},
		{"lastTimestamp", ev.DeprecatedLastTimestamp, old.DeprecatedLastTimestamp},
		{"count", ev.DeprecatedCount, old.DeprecatedCount},
		{"type", ev.Type, old.Type},
		{"eventTime", ev.EventTime, old.EventTime},
		{"action", ev.Action, old.Action},
		{"related", ev.Related, old.Related},
		{"reportingController", ev.ReportingController, old.ReportingController},
		{"reportingInstance", ev.ReportingInstance, old.ReportingInstance},
	} {
		errs = append(errs, validateImmutable(f.new, f.old, field.NewPath(f.name))...)
	}
	return errs
}

func equalSeries(a, b *eventsv1.EventSeries) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Count == b.Count && a.LastObservedTime.Equal(&b.LastObservedTime)
}

// unsetError reports a field that must be left unset.
func unsetError(name string) *field.Error {
	return field.Invalid(field.NewPath(name), "", "needs to be unset")
}

// lengthError reports a field longer than limit characters.
func lengthError(name string, limit int) *field.Error {
	return field.Invalid(field.NewPath(name), "", fmt.Sprintf("can have at most %v characters", limit))
}
