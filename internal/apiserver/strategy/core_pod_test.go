package strategy

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// newPod returns a minimal valid pod, defaulted as the server stores it.
func newPod() *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "1"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
	strategyFor("", "pods").Default(pod)
	return pod
}

func TestPodDefaultsMatchKubernetes(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "scratch"},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
			},
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "nginx",
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"},
				}}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)},
				}},
			}},
		},
	}
	strategyFor("", "pods").Default(pod)

	want := corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptrTo(int32(420))}}},
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptrTo(int32(420))}}},
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: ptrTo(corev1.HostPathUnset)}}},
		},
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"},
			}}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			},
			LivenessProbe: &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds:   1,
				PeriodSeconds:    10,
				SuccessThreshold: 1,
				FailureThreshold: 3,
			},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullAlways,
		}},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptrTo(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
		Priority:                      ptrTo(int32(0)),
		EnableServiceLinks:            ptrTo(true),
		PreemptionPolicy:              ptrTo(corev1.PreemptLowerPriority),
	}
	if !apiequality.Semantic.DeepEqual(pod.Spec, want) {
		t.Errorf("defaulted spec differs (-want +got):\n%s", diff.Diff(want, pod.Spec))
	}
}

func TestPodTemplateDefaultsLeavePodOnlyFields(t *testing.T) {
	tpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "nginx:1.27",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
	}}}}
	defaultPodTemplate(&tpl)
	if tpl.Spec.EnableServiceLinks != nil || tpl.Spec.Priority != nil || tpl.Spec.Containers[0].Resources.Requests != nil {
		t.Errorf("template got pod-only defaults: %+v", tpl.Spec)
	}
	if tpl.Spec.RestartPolicy != corev1.RestartPolicyAlways || tpl.Spec.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template spec defaults missing: %+v", tpl.Spec)
	}
}

func TestHostNetworkPodDefaultsHostPorts(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
		Name: "app", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
	}}}}
	defaultPod(pod)
	if got := pod.Spec.Containers[0].Ports[0].HostPort; got != 8080 {
		t.Errorf("hostPort = %d, want 8080", got)
	}
}

func TestPodDefaultsMirrorDeprecatedFields(t *testing.T) {
	pod := &corev1.Pod{
		Spec:   corev1.PodSpec{DeprecatedServiceAccount: "builder", Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
		Status: corev1.PodStatus{PodIP: "10.42.0.5", HostIPs: []corev1.HostIP{{IP: "192.168.1.10"}}},
	}
	defaultPod(pod)
	if pod.Spec.ServiceAccountName != "builder" {
		t.Errorf("serviceAccountName = %q", pod.Spec.ServiceAccountName)
	}
	if len(pod.Status.PodIPs) != 1 || pod.Status.PodIPs[0].IP != "10.42.0.5" || pod.Status.HostIP != "192.168.1.10" {
		t.Errorf("status IPs = %+v", pod.Status)
	}
}

func TestImagePullPolicyFollowsTag(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"nginx":                       corev1.PullAlways,
		"nginx:latest":                corev1.PullAlways,
		"nginx:1.27":                  corev1.PullIfNotPresent,
		"docker.io/library/nginx":     corev1.PullAlways,
		"localhost:5000/nginx":        corev1.PullAlways,
		"localhost:5000/nginx:1.0":    corev1.PullIfNotPresent,
		"nginx@sha256:0123456789abcd": corev1.PullIfNotPresent,
		"nginx:latest@sha256:0123abc": corev1.PullAlways,
		"Nginx":                       corev1.PullIfNotPresent,
		"":                            corev1.PullIfNotPresent,
	} {
		if got := pullPolicyFor(image); got != want {
			t.Errorf("pullPolicyFor(%q) = %s, want %s", image, got, want)
		}
	}
}

func TestPodQOSClass(t *testing.T) {
	res := func(req, lim string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{}
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse("64Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse("64Mi")}
		}
		return r
	}
	for _, tc := range []struct {
		name string
		res  []corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"no resources", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"requests only", []corev1.ResourceRequirements{res("100m", "")}, corev1.PodQOSBurstable},
		{"requests below limits", []corev1.ResourceRequirements{res("100m", "200m")}, corev1.PodQOSBurstable},
		{"requests equal limits", []corev1.ResourceRequirements{res("200m", "200m")}, corev1.PodQOSGuaranteed},
		{"one container unlimited", []corev1.ResourceRequirements{res("200m", "200m"), {}}, corev1.PodQOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			for _, r := range tc.res {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c", Image: "i", Resources: r})
			}
			defaultPod(pod)
			preparePodForCreate(pod)
			if pod.Status.QOSClass != tc.want {
				t.Errorf("QOS = %s, want %s", pod.Status.QOSClass, tc.want)
			}
		})
	}
}

func TestPodCreateResetsStatus(t *testing.T) {
	pod := newPod()
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/gate"}}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}
	strategyFor("", "pods").PrepareForCreate(pod)
	want := corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}},
	}
	if delta := diff.Diff(want, pod.Status); delta != "" {
		t.Errorf("status (-want +got):\n%s", delta)
	}
}

func TestPodValidation(t *testing.T) {
	dnsLabelMsg := validation.IsDNS1123Label("Web")[0]
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"valid", func(*corev1.Pod) {}, nil},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []string{"spec.containers: Required value"}},
		{"missing image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []string{"spec.containers[0].image: Required value"}},
		{"missing container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, []string{"spec.containers[0].name: Required value"}},
		{"container name not a DNS label", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web" },
			[]string{`spec.containers[0].name: Invalid value: "Web": ` + dnsLabelMsg}},
		{"duplicate container across init containers", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{p.Spec.Containers[0]}
		}, []string{`spec.initContainers[0].name: Duplicate value: "app"`}},
		{"duplicate container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
		}, []string{`spec.containers[1].name: Duplicate value: "app"`}},
		{"image with whitespace", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			[]string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`}},
		{"port missing", func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Protocol: "TCP"}} },
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"port out of range", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000, HostPort: -1, Protocol: "TCP"}}
		}, []string{
			"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
			"spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
		}},
		{"port protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "HTTP"}}
		},
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`}},
		{"host port conflict", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}, {ContainerPort: 81, HostPort: 8080, Protocol: "TCP"}}
		}, []string{`spec.containers[0].ports[1].hostPort: Duplicate value: "TCP//8080"`}},
		{"restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" },
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"dns policy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Other" },
			[]string{`spec.dnsPolicy: Unsupported value: "Other": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`}},
		{"dns none without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone },
			[]string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{"duplicate volume", func(p *corev1.Pod) {
			v := corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
			p.Spec.Volumes = []corev1.Volume{v, v}
		}, []string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"volume with two sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/data"}, EmptyDir: &corev1.EmptyDirVolumeSource{},
			}}}
		}, []string{"spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"}},
		{"volume without source", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "data"}} },
			[]string{"spec.volumes[0]: Required value: must specify a volume type"}},
		{"secret volume without name", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}}}
		}, []string{"spec.volumes[0].secret.secretName: Required value"}},
		{"mount of unknown volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "missing", MountPath: "/data"}}
		}, []string{`spec.containers[0].volumeMounts[0].name: Not found: "missing"`}},
		{"mount without path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data"}}
		}, []string{"spec.containers[0].volumeMounts[0].mountPath: Required value"}},
		{"negative quantity", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}
		}, []string{`spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or equal to 0`}},
		{"requests above limits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
			}
		}, []string{`spec.containers[0].resources.requests: Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi`}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"gpu": resource.MustParse("1")}
		}, []string{
			`spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or fully qualified`,
			`spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard resource for containers`,
		}},
		{"probe without handler", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 1} },
			[]string{"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
		{"liveness success threshold", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, SuccessThreshold: 2}
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"init container probe", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: "Always", TerminationMessagePolicy: "File",
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"}},
		{"env without name", func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}} },
			[]string{"spec.containers[0].env[0].name: Required value"}},
		{"env field ref unsupported", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.phase"}}}}
		}, []string{`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"`}},
		{"toleration without key", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "x"}}
		},
			[]string{"spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""}},
		{"ephemeral containers on create", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, []string{"spec.ephemeralContainers: Forbidden: cannot be set on create"}},
		{"missing namespace", func(p *corev1.Pod) { p.Namespace = "" }, []string{"metadata.namespace: Required value"}},
		{"missing name", func(p *corev1.Pod) { p.Name = "" }, []string{"metadata.name: Required value: name or generateName is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod()
			tc.mutate(pod)
			expectErrors(t, strategyFor("", "pods").Validate(pod), tc.want...)
		})
	}
}

const podUpdateForbidden = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"

func TestPodUpdateAllowsOnlyMutableFields(t *testing.T) {
	allowed := []struct {
		name   string
		mutate func(*corev1.Pod)
	}{
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }},
		{"active deadline set", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }},
		{"toleration added", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}},
		{"without resourceVersion", func(p *corev1.Pod) { p.ResourceVersion = "" }},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			old := newPod()
			pod := old.DeepCopy()
			tc.mutate(pod)
			expectErrors(t, strategyFor("", "pods").ValidateUpdate(pod, old))
		})
	}

	forbidden := []struct {
		name        string
		mutate      func(*corev1.Pod)
		typ         field.ErrorType
		fld, detail string
	}{
		{"container port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}
		}, field.ErrorTypeForbidden, "spec", podUpdateForbidden},
		{"node name", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, field.ErrorTypeForbidden, "spec", podUpdateForbidden},
		{"container added", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "busybox", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
		}, field.ErrorTypeForbidden, "spec.containers", "pod updates may not add or remove containers"},
		{"name", func(p *corev1.Pod) { p.Name = "other" }, field.ErrorTypeInvalid, "metadata.name", "field is immutable"},
		{"deadline raised", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(120)) },
			field.ErrorTypeInvalid, "spec.activeDeadlineSeconds", "must be less than or equal to previous value"},
		{"toleration changed", func(p *corev1.Pod) { p.Spec.Tolerations[0].Key = "other" },
			field.ErrorTypeForbidden, "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"},
	}
	for _, tc := range forbidden {
		t.Run(tc.name, func(t *testing.T) {
			old := newPod()
			old.Spec.ActiveDeadlineSeconds = ptrTo(int64(60))
			old.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			pod := old.DeepCopy()
			tc.mutate(pod)
			expectError(t, strategyFor("", "pods").ValidateUpdate(pod, old), tc.typ, tc.fld, tc.detail)
		})
	}
}

func TestPodUpdateAfterStorageRoundTrip(t *testing.T) {
	s := strategyFor("", "pods")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "1"},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "nginx", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("0.5")}}}},
		},
	}
	s.Default(pod)
	data, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	var stored corev1.Pod
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatal(err)
	}
	// A client replacing the pod with its original manifest plus a label.
	update := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", ResourceVersion: "1", Labels: map[string]string{"a": "b"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "nginx", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
		},
	}
	s.Default(update)
	expectErrors(t, s.ValidateUpdate(update, &stored))
}

func TestForbiddenPodUpdateShowsTheDifference(t *testing.T) {
	old := newPod()
	old.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
	old.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now()}},
	}}}}
	pod := old.DeepCopy()
	pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("2Gi")
	errs := strategyFor("", "pods").ValidateUpdate(pod, old)
	expectError(t, errs, field.ErrorTypeForbidden, "spec", podUpdateForbidden)
	for _, e := range errs {
		if e.Field == "spec" && !strings.Contains(e.Detail, "2Gi") {
			t.Errorf("detail does not show the change:\n%s", e.Detail)
		}
	}
}

func TestPodStatusUpdate(t *testing.T) {
	old := newPod()
	preparePodForCreate(old)
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{"running", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIP = "10.42.0.5"
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.5"}}
		}, nil},
		{"node name", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, []string{"status.nodeName: Forbidden: may not be changed directly"}},
		{"qos class", func(p *corev1.Pod) { p.Status.QOSClass = corev1.PodQOSGuaranteed },
			[]string{`status.qosClass: Invalid value: "Guaranteed": field is immutable`}},
		{"pod ip", func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.500"}} },
			[]string{`status.podIPs[0]: Invalid value: "10.42.0.500": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := old.DeepCopy()
			tc.mutate(pod)
			expectErrors(t, strategyFor("", "pods").ValidateStatusUpdate(pod, old), tc.want...)
		})
	}
}
