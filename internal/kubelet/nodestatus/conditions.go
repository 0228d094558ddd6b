package nodestatus

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionText is the reason and message of one state of a condition,
// and the event the kubelet records on entering it.
type conditionText struct {
	reason, message, event string
}

// conditionTexts holds, per condition type, its text when False and True.
var conditionTexts = map[corev1.NodeConditionType][2]conditionText{
	corev1.NodeMemoryPressure: {
		{"KubeletHasSufficientMemory", "kubelet has sufficient memory available", "NodeHasSufficientMemory"},
		{"KubeletHasInsufficientMemory", "kubelet has insufficient memory available", "NodeHasInsufficientMemory"},
	},
	corev1.NodeDiskPressure: {
		{"KubeletHasNoDiskPressure", "kubelet has no disk pressure", "NodeHasNoDiskPressure"},
		{"KubeletHasDiskPressure", "kubelet has disk pressure", "NodeHasDiskPressure"},
	},
	corev1.NodePIDPressure: {
		{"KubeletHasSufficientPID", "kubelet has sufficient PID available", "NodeHasSufficientPID"},
		{"KubeletHasInsufficientPID", "kubelet has insufficient PID available", "NodeHasInsufficientPID"},
	},
	corev1.NodeReady: {
		{"KubeletNotReady", "", "NodeNotReady"},
		{"KubeletReady", "kubelet is posting ready status", "NodeReady"},
	},
}

// ownConditions are the condition types this package writes, in the
// kubelet's order.
var ownConditions = []corev1.NodeConditionType{
	corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady,
}

// conditions returns the four kubelet conditions computed from usage and
// the runtime's health, followed by any conditions of other types in old
// (a merge patch replaces the whole list). A condition keeps its
// lastTransitionTime from old while its status stays the same.
func (a *Agent) conditions(old []corev1.NodeCondition, u HostUsage, runtimeErr, networkErr error) []corev1.NodeCondition {
	now := metav1.NewTime(a.clock.Now())
	state := map[corev1.NodeConditionType]bool{
		corev1.NodeMemoryPressure: u.MemoryAvailable < evictionMemory.Value(),
		corev1.NodeDiskPressure:   u.DiskCapacity > 0 && float64(u.DiskAvailable) < evictionDiskFraction*float64(u.DiskCapacity),
		corev1.NodePIDPressure:    u.PIDMax > 0 && float64(u.PIDs) > pidPressureFraction*float64(u.PIDMax),
		corev1.NodeReady:          runtimeErr == nil && networkErr == nil,
	}
	out := make([]corev1.NodeCondition, 0, len(ownConditions)+len(old))
	for _, typ := range ownConditions {
		on := state[typ]
		text := conditionTexts[typ][boolIndex(on)]
		c := corev1.NodeCondition{
			Type:               typ,
			Status:             conditionStatus(on),
			Reason:             text.reason,
			Message:            text.message,
			LastHeartbeatTime:  now,
			LastTransitionTime: now,
		}
		switch {
		case typ != corev1.NodeReady:
		case runtimeErr != nil:
			c.Message = fmt.Sprintf("container runtime is down: %v", runtimeErr)
		case networkErr != nil:
			c.Message = fmt.Sprintf("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:%v", networkErr)
		}
		if prev := findCondition(old, typ); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		out = append(out, c)
	}
	for _, c := range old {
		if _, ours := conditionTexts[c.Type]; !ours {
			out = append(out, c)
		}
	}
	return out
}

// recordTransitions records the kubelet's event for each own condition
// whose status differs from old. A condition absent from old counts as a
// change, except a Ready that starts out not ready.
func (a *Agent) recordTransitions(node *corev1.Node, old, cur []corev1.NodeCondition) {
	for _, c := range cur {
		texts, ours := conditionTexts[c.Type]
		if !ours {
			continue
		}
		prev := findCondition(old, c.Type)
		if prev != nil && prev.Status == c.Status {
			continue
		}
		// A node that starts not ready has not become not ready.
		if prev == nil && c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			continue
		}
		event := texts[boolIndex(c.Status == corev1.ConditionTrue)].event
		a.event(node, corev1.EventTypeNormal, event, fmt.Sprintf("Node %s status is now: %s", a.cfg.NodeName, event))
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			a.log.WithField("message", c.Message).Warn("Node became not ready")
		}
	}
}

func findCondition(cs []corev1.NodeCondition, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

func conditionStatus(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
