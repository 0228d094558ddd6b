package kubelet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// phase is the phase the pod's containers put it in now.
func (k *Kubelet) phase(pod *corev1.Pod, pc *podContainers, mem *podMemory) corev1.PodPhase {
	return k.computeStatus(pod, pc, mem, false).Phase
}

// reportStatus computes the pod's status and writes it when it differs
// from what the API has.
func (k *Kubelet) reportStatus(ctx context.Context, pod *corev1.Pod, pc *podContainers, mem *podMemory) {
	pc, err := k.regather(ctx, pc, pod.UID)
	if err != nil {
		return
	}
	k.writeStatus(ctx, pod, k.computeStatus(pod, pc, mem, false), mem)
}

func (k *Kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus, mem *podMemory) {
	if cur := k.Pod(pod.UID); cur != nil {
		pod = cur
	}
	if sameStatus(pod.Status, status) {
		return
	}
	if mem.last != nil && sameStatus(*mem.last, status) && mem.lastRV == pod.ResourceVersion {
		return // written already; the informer has not caught up
	}
	// A strategic merge patch of the difference, as the kubelet sends:
	// conditions merge by type, so one another writer added meanwhile
	// stays. The base is what the API holds: the status last written
	// while the informer has not caught up.
	base := pod.Status
	if mem.last != nil && mem.lastRV == pod.ResourceVersion {
		base = *mem.last
	}
	body, err := statusPatch(pod.UID, base, status)
	if err != nil {
		k.log.WithError(err).WithField("pod", pod.Namespace+"/"+pod.Name).Warn("status patch")
		return
	}
	if _, err := k.cfg.Client.Patch(ctx, pod, types.StrategicMergePatchType, body, "status"); err != nil {
		if ctx.Err() == nil && !apierrors.IsNotFound(err) {
			k.log.WithError(err).WithField("pod", pod.Namespace+"/"+pod.Name).Warn("update pod status")
		}
		return
	}
	mem.last, mem.lastRV = &status, pod.ResourceVersion
	if !mem.reported && status.Phase == corev1.PodRunning && allRunning(status) {
		mem.reported = true
		if k.cfg.PodStarted != nil {
			k.cfg.PodStarted(k.clock.Since(mem.firstSeen))
		}
	}
}

// statusPatch is the strategic merge patch from old to status, with the
// pod's UID as a precondition.
func statusPatch(uid types.UID, old, status corev1.PodStatus) ([]byte, error) {
	ob, err := json.Marshal(corev1.Pod{Status: old})
	if err != nil {
		return nil, err
	}
	nb, err := json.Marshal(corev1.Pod{Status: status})
	if err != nil {
		return nil, err
	}
	p, err := strategicpatch.CreateTwoWayMergePatch(ob, nb, corev1.Pod{})
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, err
	}
	m["metadata"] = map[string]any{"uid": uid}
	return json.Marshal(m)
}

func allRunning(s corev1.PodStatus) bool {
	for _, c := range s.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

// sameStatus compares statuses at the API's precision (whole seconds).
func sameStatus(a, b corev1.PodStatus) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb) || apiequality.Semantic.DeepEqual(a, b)
}

// computeStatus is the pod's status from its containers. terminal makes
// the phase final (the pod is being deleted and nothing will restart).
func (k *Kubelet) computeStatus(pod *corev1.Pod, pc *podContainers, mem *podMemory, terminal bool) corev1.PodStatus {
	old := pod.Status
	s := corev1.PodStatus{
		QOSClass: old.QOSClass, NominatedNodeName: old.NominatedNodeName,
		HostIP: k.cfg.HostIP, PodIP: old.PodIP, PodIPs: old.PodIPs,
	}
	if k.cfg.HostIP != "" {
		s.HostIPs = []corev1.HostIP{{IP: k.cfg.HostIP}}
	}
	if s.QOSClass == "" {
		s.QOSClass = qosClass(pod)
	}
	start := old.StartTime
	if start == nil {
		t := metav1.NewTime(mem.firstSeen.Truncate(1e9))
		start = &t
	}
	s.StartTime = start
	sb := pc.sandbox()
	sandboxUp := sb != nil && sb.State == rt.StateRunning
	if sandboxUp {
		if ip := k.podIP(pod, sb); ip != "" {
			s.PodIP, s.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		}
	}

	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := k.containerStatus(pod, c, pc, mem, "PodInitializing", terminal)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initDone = false
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	appWaiting := "ContainerCreating"
	if !initDone {
		appWaiting = "PodInitializing"
	}
	for i := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, k.containerStatus(pod, &pod.Spec.Containers[i], pc, mem, appWaiting, terminal))
	}
	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses, terminal)
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		s.Phase = old.Phase // a terminal phase is final, whoever set it
	}
	if s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed {
		for i := range s.ContainerStatuses {
			s.ContainerStatuses[i].Ready = false
		}
	}
	s.Conditions = k.conditions(pod, s, sandboxUp, initDone)
	return s
}

// containerStatus reports one container from its newest two instances.
func (k *Kubelet) containerStatus(pod *corev1.Pod, c *corev1.Container, pc *podContainers, mem *podMemory, waitingReason string, terminal bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	f := false
	cs.Started = &f
	inst := pc.latest(c.Name)
	w := mem.waiting[c.Name]
	if inst == nil {
		reason, msg := w.reason, w.message
		if reason == "" {
			reason = waitingReason
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		return cs
	}
	cs.ContainerID = "docker://" + inst.ID
	cs.ImageID = "docker://" + inst.ImageID
	cs.RestartCount = int32(inst.Meta.Attempt)
	if prev := pc.previous(c.Name); prev != nil && prev.State == rt.StateExited {
		cs.LastTerminationState.Terminated = k.terminated(pod, c, prev)
	}
	switch inst.State {
	case rt.StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(inst.StartedAt.Truncate(1e9))}
		started, ready, _ := k.probes.Status(pod.UID, inst.ID)
		cs.Started = &started
		cs.Ready = ready && started
	case rt.StateExited:
		term := k.terminated(pod, c, inst)
		restarts := !terminal && (shouldRestart(pod.Spec.RestartPolicy, inst.ExitCode) || isInit(pod, c.Name) && inst.ExitCode != 0 && pod.Spec.RestartPolicy != corev1.RestartPolicyNever)
		if restarts && w.reason != "" {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
			cs.LastTerminationState = corev1.ContainerState{Terminated: term}
		} else {
			cs.State.Terminated = term
		}
	default:
		reason := w.reason
		if reason == "" {
			reason = "ContainerCreating"
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: w.message}
	}
	return cs
}

func isInit(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// terminated describes an exited instance, with its termination message.
func (k *Kubelet) terminated(pod *corev1.Pod, c *corev1.Container, inst *rt.ContainerStatus) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    int32(inst.ExitCode),
		Reason:      "Error",
		StartedAt:   metav1.NewTime(inst.StartedAt.Truncate(1e9)),
		FinishedAt:  metav1.NewTime(inst.FinishedAt.Truncate(1e9)),
		ContainerID: "docker://" + inst.ID,
	}
	switch {
	case inst.OOMKilled:
		t.Reason = "OOMKilled"
	case inst.ExitCode == 0:
		t.Reason = "Completed"
	case inst.Error != "":
		t.Reason = "ContainerCannotRun"
		t.Message = inst.Error
	}
	if msg := k.inspect.message(inst.ID, func() string { return k.terminationMessage(pod, c, inst) }); msg != "" {
		t.Message = msg
	}
	return t
}

// terminationMessage reads an exited instance's termination message file,
// or with FallbackToLogsOnError the end of its logs after a failure.
func (k *Kubelet) terminationMessage(pod *corev1.Pod, c *corev1.Container, inst *rt.ContainerStatus) string {
	if k.cfg.Volumes != nil {
		if b, err := os.ReadFile(k.terminationFile(pod, c.Name, inst.Meta.Attempt)); err == nil && len(b) > 0 {
			return string(b[:min(len(b), 4096)])
		}
	}
	if inst.ExitCode != 0 && inst.Error == "" && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		var out bytes.Buffer
		if err := k.rt.Logs(context.Background(), inst.ID, rt.LogOptions{TailLines: 80}, &out, &out); err == nil {
			b := out.Bytes()
			return string(b[max(0, len(b)-2048):])
		}
	}
	return ""
}

// podPhase is the kubelet's phase rule.
func podPhase(pod *corev1.Pod, inits, cs []corev1.ContainerStatus, terminal bool) corev1.PodPhase {
	never := pod.Spec.RestartPolicy == corev1.RestartPolicyNever || terminal
	for _, s := range inits {
		t := s.State.Terminated
		if t == nil && s.State.Waiting != nil {
			t = s.LastTerminationState.Terminated
			if t != nil && !never {
				return corev1.PodPending // restarting a failed init container
			}
		}
		switch {
		case t != nil && t.ExitCode == 0 && s.State.Terminated != nil:
			continue
		case t != nil && t.ExitCode != 0 && never:
			return corev1.PodFailed
		case terminal:
			return corev1.PodFailed
		}
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, s := range cs {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.LastTerminationState.Terminated != nil:
			stopped++
			if s.LastTerminationState.Terminated.ExitCode == 0 {
				succeeded++
			}
		default:
			waiting++
		}
	}
	if terminal {
		if succeeded == len(cs) {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0 && stopped == len(cs):
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if succeeded == stopped {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
			return corev1.PodRunning
		}
		return corev1.PodFailed
	}
	return corev1.PodPending
}

// conditions computes the pod's conditions, keeping transition times of
// unchanged ones and conditions others own (PodScheduled, ...).
func (k *Kubelet) conditions(pod *corev1.Pod, s corev1.PodStatus, sandboxUp, initDone bool) []corev1.PodCondition {
	now := metav1.NewTime(k.clock.Now().Truncate(1e9))
	done := s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed
	var out []corev1.PodCondition
	add := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		for _, o := range pod.Status.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, c)
	}
	var incomplete, unready []string
	for _, cs := range s.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, cs.Name)
		}
	}
	for _, cs := range s.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	add(corev1.PodReadyToStartContainers, sandboxUp, "", "")
	switch {
	case done && initDone:
		add(corev1.PodInitialized, true, "", "")
		out[len(out)-1].Reason = "PodCompleted"
	default:
		add(corev1.PodInitialized, initDone, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " ")))
	}
	ready, reason, msg := len(unready) == 0, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if done {
		ready, reason, msg = false, "PodCompleted", ""
	}
	add(corev1.ContainersReady, ready, reason, msg)
	podReady, preason, pmsg := ready, reason, msg
	if ready {
		for _, g := range pod.Spec.ReadinessGates {
			found := false
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType {
					found = true
					if c.Status != corev1.ConditionTrue {
						podReady, preason, pmsg = false, "ReadinessGatesNotReady", fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", g.ConditionType, c.Status)
					}
				}
			}
			if !found {
				podReady, preason, pmsg = false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType)
			}
		}
	}
	add(corev1.PodReady, podReady, preason, pmsg)
	owned := map[corev1.PodConditionType]bool{}
	for _, c := range out {
		owned[c.Type] = true
	}
	for _, c := range pod.Status.Conditions {
		if !owned[c.Type] {
			out = append(out, c)
		}
	}
	order := map[corev1.PodConditionType]int{corev1.PodReadyToStartContainers: 0, corev1.PodInitialized: 1,
		corev1.PodReady: 2, corev1.ContainersReady: 3, corev1.PodScheduled: 4}
	sort.SliceStable(out, func(i, j int) bool {
		oi, ok1 := order[out[i].Type]
		oj, ok2 := order[out[j].Type]
		if !ok1 {
			oi = 5
		}
		if !ok2 {
			oj = 5
		}
		return oi < oj
	})
	return out
}

// qosClass is the pod's quality of service class.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := 0, 0
	guaranteed := true
	for _, c := range allContainers(pod) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq && !req.IsZero() {
				requests++
			}
			if hasLim && !lim.IsZero() {
				limits++
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case requests == 0 && limits == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
