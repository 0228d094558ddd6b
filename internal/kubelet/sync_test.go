package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
)

func emptyTar() io.Reader {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	_ = tw.Close()
	return &b
}

func TestPodStartsAndReportsRunning(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("web", corev1.Container{Name: "app"}, corev1.Container{Name: "side", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	s := h.status(pod.UID)
	if s.PodIP == "" || s.HostIP != "192.0.2.10" || s.StartTime == nil || s.QOSClass != corev1.PodQOSBestEffort {
		t.Fatalf("status: %+v", s)
	}
	for _, c := range s.ContainerStatuses {
		if !c.Ready || c.RestartCount != 0 || !strings.HasPrefix(c.ContainerID, "docker://") || c.Started == nil || !*c.Started {
			t.Fatalf("container status %+v", c)
		}
	}
	h.until(100*time.Millisecond, "ready", func() error {
		s := h.status(pod.UID)
		for _, c := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized, corev1.PodScheduled, corev1.PodReadyToStartContainers} {
			if condition(s, c) != corev1.ConditionTrue {
				return fmt.Errorf("%s is %q", c, condition(s, c))
			}
		}
		return nil
	})
	if n := len(h.containers(pod.UID)); n != 3 {
		t.Fatalf("%d containers, want sandbox + 2", n)
	}
	if !h.sawEvent("Created") {
		t.Fatal("no Created event")
	}
}

func TestCrashedContainerRestartsWithBackOff(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("crash", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	// Small steps: the runtime's exit times are real, so the fake clock
	// must not run far ahead of real time before the back-off.
	h.until(10*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	id := strings.TrimPrefix(h.status(pod.UID).ContainerStatuses[0].ContainerID, "docker://")

	// The first crash restarts at once.
	if err := h.rt.Exit(id, 2); err != nil {
		t.Fatal(err)
	}
	h.until(10*time.Millisecond, "first restart", func() error {
		s := h.status(pod.UID)
		cs := s.ContainerStatuses[0]
		if cs.RestartCount != 1 || cs.State.Running == nil {
			return fmt.Errorf("restartCount %d state %+v", cs.RestartCount, cs.State)
		}
		if t := cs.LastTerminationState.Terminated; t == nil || t.ExitCode != 2 || t.Reason != "Error" {
			return fmt.Errorf("lastState %+v", cs.LastTerminationState)
		}
		return nil
	})

	// The second waits out 10 s in CrashLoopBackOff.
	id = strings.TrimPrefix(h.status(pod.UID).ContainerStatuses[0].ContainerID, "docker://")
	if err := h.rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	h.until(10*time.Millisecond, "back-off", func() error {
		cs := h.status(pod.UID).ContainerStatuses[0]
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
			return fmt.Errorf("state %+v", cs.State)
		}
		if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=app pod=crash_default") {
			return fmt.Errorf("message %q", cs.State.Waiting.Message)
		}
		return nil
	})
	if h.status(pod.UID).Phase != corev1.PodRunning {
		t.Fatalf("a crash-looping pod is Running, got %s", h.status(pod.UID).Phase)
	}
	h.until(time.Second, "restart after back-off", func() error {
		cs := h.status(pod.UID).ContainerStatuses[0]
		if cs.RestartCount != 2 || cs.State.Running == nil {
			return fmt.Errorf("restartCount %d", cs.RestartCount)
		}
		return nil
	})
	// Only the newest two instances are kept.
	h.until(time.Second, "pruned", func() error {
		if n := len(h.containers(pod.UID)); n != 3 {
			return fmt.Errorf("%d containers, want sandbox + 2 instances", n)
		}
		return nil
	})
}

func TestRestartPolicyNeverFailsThePod(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("once", corev1.Container{Name: "app", Command: []string{"sh", "-c", "exit 3"}})
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.client.add(pod)
	h.until(100*time.Millisecond, "failed", func() error {
		s := h.status(pod.UID)
		if s.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", s.Phase)
		}
		if t := s.ContainerStatuses[0].State.Terminated; t == nil || t.ExitCode != 3 {
			return fmt.Errorf("state %+v", s.ContainerStatuses[0].State)
		}
		return nil
	})
	h.until(100*time.Millisecond, "sandbox stopped", func() error {
		for _, c := range h.containers(pod.UID) {
			if c.State == rt.StateRunning {
				return fmt.Errorf("%s still runs", c.Meta.Kind)
			}
		}
		return nil
	})
	if r := condition(h.status(pod.UID), corev1.PodReady); r != corev1.ConditionFalse {
		t.Fatalf("Ready %q", r)
	}
}

func TestInitContainersRunFirstInOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("init", corev1.Container{Name: "app"})
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "one", Image: testImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", "sleep 1"}},
		{Name: "two", Image: testImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"true"}},
	}
	h.client.add(pod)
	h.until(0, "initializing", func() error {
		s := h.status(pod.UID)
		if len(s.ContainerStatuses) == 0 || s.ContainerStatuses[0].State.Waiting == nil || s.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" {
			return fmt.Errorf("app status %+v", s.ContainerStatuses)
		}
		if condition(s, corev1.PodInitialized) != corev1.ConditionFalse || s.Phase != corev1.PodPending {
			return fmt.Errorf("initialized %q phase %s", condition(s, corev1.PodInitialized), s.Phase)
		}
		return nil
	})
	h.until(200*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	s := h.status(pod.UID)
	for _, ic := range s.InitContainerStatuses {
		if ic.State.Terminated == nil || ic.State.Terminated.Reason != "Completed" {
			t.Fatalf("init %s: %+v", ic.Name, ic.State)
		}
	}
	// "two" started only after "one" finished.
	var oneDone, twoStart time.Time
	for _, c := range h.containers(pod.UID) {
		st, _ := h.rt.InspectContainer(context.Background(), c.ID)
		switch c.Meta.Name {
		case "one":
			oneDone = st.FinishedAt
		case "two":
			twoStart = st.StartedAt
		}
	}
	if twoStart.Before(oneDone) {
		t.Fatalf("init two started %v before one finished %v", twoStart, oneDone)
	}
}

func TestDeletedPodIsStoppedFinalisedAndRemoved(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("gone", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })

	del := h.client.pod(pod.UID).DeepCopy()
	now := metav1.NewTime(h.clock.Now())
	grace := int64(1)
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
	h.client.add(del)
	h.until(500*time.Millisecond, "deleted", func() error {
		h.client.mu.Lock()
		defer h.client.mu.Unlock()
		if len(h.client.deletes) != 1 {
			return fmt.Errorf("deletes %v", h.client.deletes)
		}
		return nil
	})
	h.until(100*time.Millisecond, "containers removed", func() error {
		if cs := h.containers(pod.UID); len(cs) != 0 {
			return fmt.Errorf("%d containers left", len(cs))
		}
		return nil
	})
	if !h.sawEvent("Killing") {
		t.Fatal("no Killing event")
	}
}

func TestRestartedKubeletAdoptsRunningContainers(t *testing.T) {
	h := newHarness(t, nil)
	h.run()
	pod := testPod("adopt", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	orphan := testPod("orphan", corev1.Container{Name: "app", Command: []string{"sleep", "inf"}})
	h.client.add(orphan)
	h.until(100*time.Millisecond, "orphan running", func() error { return running(h.status(orphan.UID)) })
	h.stop()
	before := h.containers(pod.UID)

	// A new kubelet on the same runtime, with the orphan deleted while
	// no kubelet ran.
	h2 := newHarness(t, h.rt)
	h2.client.pods[pod.UID] = h.client.pod(pod.UID)
	calls := len(h.rt.Calls())
	h2.run()
	h2.client.k.HandlePod(nil, h2.client.pod(pod.UID))
	h2.until(100*time.Millisecond, "orphan removed", func() error {
		if cs := h2.containers(orphan.UID); len(cs) != 0 {
			return fmt.Errorf("%d orphan containers", len(cs))
		}
		return nil
	})
	after := h2.containers(pod.UID)
	if len(after) != len(before) {
		t.Fatalf("containers %d -> %d", len(before), len(after))
	}
	for _, c := range h.rt.Calls()[calls:] {
		if (c.Method == "CreateContainer" || c.Method == "CreateSandbox" || c.Method == "StopContainer") && !strings.Contains(c.Arg, string(orphan.UID)) && !isOrphanContainer(h2, c.Arg, orphan) {
			t.Fatalf("restarted kubelet called %s(%s)", c.Method, c.Arg)
		}
	}
	if err := running(h2.status(pod.UID)); err != nil {
		t.Fatal(err)
	}
}

func isOrphanContainer(h *harness, id string, orphan *corev1.Pod) bool {
	st, err := h.rt.InspectContainer(context.Background(), id)
	return err != nil || st.Meta.Pod.UID == string(orphan.UID)
}

func TestImagePullPolicies(t *testing.T) {
	r := fake.New()
	if _, err := r.ImportImage(context.Background(), emptyTar(), "sandbox:1", rt.ImageConfig{}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, r)
	h.run()
	never := testPod("never", corev1.Container{Name: "app", Image: "absent:1", ImagePullPolicy: corev1.PullNever})
	h.client.add(never)
	h.until(100*time.Millisecond, "ErrImageNeverPull", func() error {
		return waitingReason(h.status(never.UID), "ErrImageNeverPull", `Container image "absent:1" is not present with pull policy of Never`)
	})
	pull := testPod("pull", corev1.Container{Name: "app", Image: "unreachable.example/app:1"})
	h.client.add(pull)
	// ErrImagePull turns into ImagePullBackOff on the next sync.
	h.until(10*time.Millisecond, "ImagePullBackOff", func() error {
		return waitingReason(h.status(pull.UID), "ImagePullBackOff", `Back-off pulling image "unreachable.example/app:1"`)
	})
	if !h.sawEvent(`Failed: Failed to pull image "unreachable.example/app:1"`) {
		t.Fatal("no Failed event for the pull")
	}
	// Once the registry has it, the pull succeeds after the back-off.
	r.AddRegistryImage("unreachable.example/app:1")
	h.until(time.Second, "pulled", func() error { return running(h.status(pull.UID)) })
}

func waitingReason(s corev1.PodStatus, reason, message string) error {
	if len(s.ContainerStatuses) == 0 {
		return fmt.Errorf("no container status")
	}
	w := s.ContainerStatuses[0].State.Waiting
	if w == nil || w.Reason != reason || (message != "" && w.Message != message) {
		return fmt.Errorf("state %+v", s.ContainerStatuses[0].State)
	}
	return nil
}

func TestLivenessFailureRestartsContainer(t *testing.T) {
	h := newHarness(t, nil)
	healthy := true
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	h.rt.ExecHook = func(id string, opts rt.ExecOptions) (int, bool) {
		<-mu
		defer func() { mu <- struct{}{} }()
		if len(opts.Cmd) > 0 && opts.Cmd[0] == "check" {
			if healthy {
				return 0, true
			}
			return 1, true
		}
		return 0, false
	}
	h.run()
	pod := testPod("live", corev1.Container{Name: "app", Command: []string{"sleep", "inf"},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
			PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1, SuccessThreshold: 1}})
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })
	<-mu
	healthy = false
	mu <- struct{}{}
	h.until(500*time.Millisecond, "restarted", func() error {
		cs := h.status(pod.UID).ContainerStatuses[0]
		if cs.RestartCount < 1 {
			return fmt.Errorf("restartCount %d", cs.RestartCount)
		}
		return nil
	})
}

func TestEnvAndConfigMapVolume(t *testing.T) {
	h := newHarness(t, nil)
	h.client.objects["cm/default/settings"] = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"},
		Data:       map[string]string{"greeting": "hello"},
	}
	h.run()
	pod := testPod("env", corev1.Container{Name: "app", Command: []string{"sleep", "inf"},
		Env: []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "greeting"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}}
	h.client.add(pod)
	h.until(100*time.Millisecond, "running", func() error { return running(h.status(pod.UID)) })

	missing := testPod("missing", corev1.Container{Name: "app",
		Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "nope"}}}}})
	h.client.add(missing)
	h.until(100*time.Millisecond, "config error", func() error {
		return waitingReason(h.status(missing.UID), "CreateContainerConfigError", "")
	})
}
