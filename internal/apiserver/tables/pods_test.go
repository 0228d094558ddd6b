package tables

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waiting(name, reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func running(name string, ready bool) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, Started: ptr(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}}}
}

func terminated(name, reason string, code, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Started: ptr(false),
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}}
}

// restarted records n restarts of a container, the last one d ago.
func restarted(cs corev1.ContainerStatus, n int32, d time.Duration) corev1.ContainerStatus {
	cs.RestartCount = n
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(d)}
	return cs
}

func condition(typ corev1.PodConditionType, status corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: typ, Status: status}
}

// pod is a pod created an hour ago with the given containers and init
// containers (those named side* restart always).
func pod(containers, initContainers []string, status corev1.PodStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: meta("web", time.Hour), Status: status}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "nginx"})
	}
	for _, c := range initContainers {
		ic := corev1.Container{Name: c, Image: "busybox"}
		if len(c) >= 4 && c[:4] == "side" {
			ic.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, ic)
	}
	return p
}

func TestPodReadyStatusRestarts(t *testing.T) {
	deleted := func(p *corev1.Pod) *corev1.Pod {
		p.DeletionTimestamp = ptr(ago(time.Second))
		return p
	}
	ready := []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue), condition(corev1.PodReady, corev1.ConditionTrue)}
	cases := []struct {
		name                    string
		pod                     *corev1.Pod
		ready, status, restarts string
	}{
		{"pending", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodPending}),
			"0/1", "Pending", "0"},
		{"container creating", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{waiting("app", "ContainerCreating")}}),
			"0/1", "ContainerCreating", "0"},
		{"running", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
			ContainerStatuses: []corev1.ContainerStatus{running("app", true)}}),
			"1/1", "Running", "0"},
		{"running not ready", pod([]string{"app", "log"}, nil, corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{running("app", true), running("log", false)}}),
			"1/2", "Running", "0"},
		{"crash loop", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{restarted(waiting("app", "CrashLoopBackOff"), 4, 5*time.Minute)}}),
			"0/1", "CrashLoopBackOff", "4 (5m ago)"},
		{"restarted and running", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
			ContainerStatuses: []corev1.ContainerStatus{restarted(running("app", true), 1, 30*time.Second)}}),
			"1/1", "Running", "1 (30s ago)"},
		{"restarts without a time", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
				cs := running("app", true)
				cs.RestartCount = 2
				return cs
			}()}}),
			"1/1", "Running", "2"},
		{"completed", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{terminated("app", "Completed", 0, 0)}}),
			"0/1", "Completed", "0"},
		{"error", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("app", "Error", 1, 0)}}),
			"0/1", "Error", "0"},
		{"exit code without reason", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("app", "", 2, 0)}}),
			"0/1", "ExitCode:2", "0"},
		{"signal without reason", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("app", "", 137, 9)}}),
			"0/1", "Signal:9", "0"},
		{"one completed one running and ready", pod([]string{"a", "b"}, nil, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", "Completed", 0, 0), running("b", true)}}),
			"1/2", "Running", "0"},
		{"one completed one running not ready", pod([]string{"a", "b"}, nil, corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", "Completed", 0, 0), running("b", true)}}),
			"1/2", "NotReady", "0"},
		{"terminating", deleted(pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
			ContainerStatuses: []corev1.ContainerStatus{running("app", true)}})),
			"1/1", "Terminating", "0"},
		{"deleted after completing", deleted(pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{terminated("app", "Completed", 0, 0)}})),
			"0/1", "Completed", "0"},
		{"deleted on a lost node", deleted(pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost",
			ContainerStatuses: []corev1.ContainerStatus{running("app", true)}})),
			"1/1", "Unknown", "0"},
		{"evicted", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}),
			"0/1", "Evicted", "0"},
		{"scheduling gated", pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}}),
			"0/1", "SchedulingGated", "0"},
		{"init running", pod([]string{"app"}, []string{"setup"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{running("setup", false)},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("app", "PodInitializing")}}),
			"0/1", "Init:0/1", "0"},
		{"init second of two", pod([]string{"app"}, []string{"one", "two"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{terminated("one", "Completed", 0, 0), waiting("two", "PodInitializing")},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("app", "PodInitializing")}}),
			"0/1", "Init:1/2", "0"},
		{"init crash loop", pod([]string{"app"}, []string{"setup"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{restarted(waiting("setup", "CrashLoopBackOff"), 3, 2*time.Minute)},
			ContainerStatuses:     []corev1.ContainerStatus{restarted(waiting("app", "PodInitializing"), 7, time.Minute)}}),
			"0/1", "Init:CrashLoopBackOff", "3 (2m ago)"},
		{"init error", pod([]string{"app"}, []string{"setup"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{terminated("setup", "Error", 1, 0)}}),
			"0/1", "Init:Error", "0"},
		{"init exit code", pod([]string{"app"}, []string{"setup"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{terminated("setup", "", 3, 0)}}),
			"0/1", "Init:ExitCode:3", "0"},
		{"sidecar started", pod([]string{"app"}, []string{"sidecar"}, corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready,
			InitContainerStatuses: []corev1.ContainerStatus{restarted(running("sidecar", true), 2, 10*time.Minute)},
			ContainerStatuses:     []corev1.ContainerStatus{restarted(running("app", true), 1, 20*time.Minute)}}),
			"2/2", "Running", "3 (10m ago)"},
		{"sidecar not started", pod([]string{"app"}, []string{"sidecar"}, corev1.PodStatus{Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{waiting("sidecar", "ContainerCreating")},
			ContainerStatuses:     []corev1.ContainerStatus{waiting("app", "PodInitializing")}}),
			"0/2", "Init:ContainerCreating", "0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cells := row(t, podsGR, c.pod)
			if cells[0] != "web" || cells[1] != c.ready || cells[2] != c.status || cells[3] != c.restarts || cells[4] != "60m" {
				t.Errorf("cells %#v, want web %s %s %s 60m", cells[:5], c.ready, c.status, c.restarts)
			}
		})
	}
}

func TestPodWideColumns(t *testing.T) {
	p := pod([]string{"app"}, nil, corev1.PodStatus{Phase: corev1.PodPending})
	wantRow(t, podsGR, p, "web", "0/1", "Pending", "0", "60m", "<none>", "<none>", "<none>", "<none>")

	p.Spec.NodeName = "node-1"
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}
	p.Status = corev1.PodStatus{
		Phase:             corev1.PodRunning,
		PodIP:             "10.42.0.9",
		PodIPs:            []corev1.PodIP{{IP: "10.42.0.9"}, {IP: "fd00::9"}},
		NominatedNodeName: "node-2",
		Conditions: []corev1.PodCondition{
			condition("example.com/lb", corev1.ConditionTrue),
			condition("example.com/dns", corev1.ConditionFalse),
		},
		ContainerStatuses: []corev1.ContainerStatus{running("app", true)},
	}
	wantRow(t, podsGR, p, "web", "1/1", "Running", "0", "60m", "10.42.0.9", "node-1", "node-2", "1/2")

	p.Status.PodIPs = nil
	if cells := row(t, podsGR, p); cells[5] != "10.42.0.9" {
		t.Errorf("IP %v, want the podIP when podIPs is unset", cells[5])
	}
	p.CreationTimestamp = metav1.Time{}
	if cells := row(t, podsGR, p); cells[4] != "<unknown>" {
		t.Errorf("age %v, want <unknown>", cells[4])
	}
}
