package strategy

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedPortProtocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

func isSupportedProtocol(p corev1.Protocol) bool {
	return p == corev1.ProtocolTCP || p == corev1.ProtocolUDP || p == corev1.ProtocolSCTP
}

// validateContainers validates the regular containers of a pod spec.
func validateContainers(containers []corev1.Container, vols map[string]corev1.VolumeSource, grace *int64, fld *field.Path) field.ErrorList {
	if len(containers) == 0 {
		return field.ErrorList{field.Required(fld, "")}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range containers {
		c := &containers[i]
		idx := fld.Index(i)
		errs = append(errs, validateContainerCommon(c, vols, idx)...)
		if names[c.Name] {
			errs = append(errs, field.Duplicate(idx.Child("name"), c.Name))
		}
		names[c.Name] = true
		errs = append(errs, validateContainerHooks(c, grace, idx)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(idx.Child("restartPolicy"), "may not be set for non-init containers"))
		}
	}
	return append(errs, checkHostPortConflicts(containers, fld)...)
}

// validateInitContainers validates init containers; their names must not
// collide with the regular containers'.
func validateInitContainers(containers, regular []corev1.Container, vols map[string]corev1.VolumeSource, grace *int64, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for _, c := range regular {
		names[c.Name] = true
	}
	for i := range containers {
		c := &containers[i]
		idx := fld.Index(i)
		errs = append(errs, validateContainerCommon(c, vols, idx)...)
		restartable := false
		if c.RestartPolicy != nil {
			restartable = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
			if !restartable {
				errs = append(errs, field.NotSupported(idx.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
			}
		}
		if names[c.Name] {
			errs = append(errs, field.Duplicate(idx.Child("name"), c.Name))
		} else if c.Name != "" {
			names[c.Name] = true
		}
		errs = append(errs, checkHostPortConflicts([]corev1.Container{*c}, fld)...)
		if restartable {
			errs = append(errs, validateContainerHooks(c, grace, idx)...)
			continue
		}
		const msg = "may not be set for init containers without restartPolicy=Always"
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"lifecycle", c.Lifecycle != nil},
			{"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil},
			{"startupProbe", c.StartupProbe != nil},
		} {
			if f.set {
				errs = append(errs, field.Forbidden(idx.Child(f.name), msg))
			}
		}
	}
	return errs
}

// validateContainerHooks validates the lifecycle hooks and probes of a
// container that may have them.
func validateContainerHooks(c *corev1.Container, grace *int64, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Lifecycle != nil {
		if c.Lifecycle.PostStart != nil {
			errs = append(errs, validateHandler(lifecycleHandler(c.Lifecycle.PostStart), grace, fld.Child("lifecycle", "postStart"))...)
		}
		if c.Lifecycle.PreStop != nil {
			errs = append(errs, validateHandler(lifecycleHandler(c.Lifecycle.PreStop), grace, fld.Child("lifecycle", "preStop"))...)
		}
	}
	if p := c.LivenessProbe; p != nil {
		errs = append(errs, validateProbe(p, grace, fld.Child("livenessProbe"))...)
		if p.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(fld.Child("livenessProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
		}
	}
	if p := c.ReadinessProbe; p != nil {
		errs = append(errs, validateProbe(p, grace, fld.Child("readinessProbe"))...)
		if p.TerminationGracePeriodSeconds != nil {
			errs = append(errs, field.Invalid(fld.Child("readinessProbe", "terminationGracePeriodSeconds"), p.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
		}
	}
	if p := c.StartupProbe; p != nil {
		errs = append(errs, validateProbe(p, grace, fld.Child("startupProbe"))...)
		if p.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(fld.Child("startupProbe", "successThreshold"), p.SuccessThreshold, "must be 1"))
		}
	}
	return errs
}

// validateContainerCommon applies the rules every kind of container
// shares: name, image, ports, env, mounts, pull policy, resources and
// security context.
func validateContainerCommon(c *corev1.Container, vols map[string]corev1.VolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else {
		errs = append(errs, validateDNS1123Label(c.Name, fld.Child("name"))...)
	}
	if c.Image == "" {
		errs = append(errs, field.Required(fld.Child("image"), ""))
	}
	switch c.TerminationMessagePolicy {
	case corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError:
	case "":
		errs = append(errs, field.Required(fld.Child("terminationMessagePolicy"), ""))
	default:
		valid := []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
		errs = append(errs, field.NotSupported(fld.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, valid))
	}
	errs = append(errs, validateContainerPorts(c.Ports, fld.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, fld.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, fld.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, vols, fld.Child("volumeMounts"))...)
	errs = append(errs, validateVolumeDevices(c.VolumeDevices, vols, fld.Child("volumeDevices"))...)
	errs = append(errs, validatePullPolicy(c.ImagePullPolicy, fld.Child("imagePullPolicy"))...)
	errs = append(errs, validateResourceRequirements(&c.Resources, fld.Child("resources"))...)
	return append(errs, validateSecurityContext(c.SecurityContext, fld.Child("securityContext"))...)
}

func validateContainerPorts(ports []corev1.ContainerPort, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		idx := fld.Index(i)
		if p.Name != "" {
			if msgs := validation.IsValidPortName(p.Name); len(msgs) != 0 {
				errs = append(errs, messages(idx.Child("name"), p.Name, msgs)...)
			} else if names[p.Name] {
				errs = append(errs, field.Duplicate(idx.Child("name"), p.Name))
			} else {
				names[p.Name] = true
			}
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(idx.Child("containerPort"), ""))
		} else {
			errs = append(errs, messages(idx.Child("containerPort"), p.ContainerPort, validation.IsValidPortNum(int(p.ContainerPort)))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, messages(idx.Child("hostPort"), p.HostPort, validation.IsValidPortNum(int(p.HostPort)))...)
		}
		errs = append(errs, validateProtocol(p.Protocol, idx.Child("protocol"))...)
	}
	return errs
}

func validateProtocol(p corev1.Protocol, fld *field.Path) field.ErrorList {
	if p == "" {
		return field.ErrorList{field.Required(fld, "")}
	}
	if !isSupportedProtocol(p) {
		return field.ErrorList{field.NotSupported(fld, p, supportedPortProtocols)}
	}
	return nil
}

// checkHostPortConflicts rejects two ports on the same host port, protocol
// and host IP.
func checkHostPortConflicts(containers []corev1.Container, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for ci, c := range containers {
		for pi, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", p.Protocol, p.HostIP, p.HostPort)
			if seen[key] {
				errs = append(errs, field.Duplicate(fld.Index(ci).Child("ports").Index(pi).Child("hostPort"), key))
			}
			seen[key] = true
		}
	}
	return errs
}

func validatePullPolicy(policy corev1.PullPolicy, fld *field.Path) field.ErrorList {
	switch policy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		return nil
	case "":
		return field.ErrorList{field.Required(fld, "")}
	}
	return field.ErrorList{field.NotSupported(fld, policy, []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever})}
}

// handler is the union of probe and lifecycle handlers.
type handler struct {
	exec      *corev1.ExecAction
	httpGet   *corev1.HTTPGetAction
	tcpSocket *corev1.TCPSocketAction
	grpc      *corev1.GRPCAction
	sleep     *corev1.SleepAction
}

func lifecycleHandler(h *corev1.LifecycleHandler) handler {
	return handler{exec: h.Exec, httpGet: h.HTTPGet, tcpSocket: h.TCPSocket, sleep: h.Sleep}
}

func validateProbe(p *corev1.Probe, grace *int64, fld *field.Path) field.ErrorList {
	h := handler{exec: p.Exec, httpGet: p.HTTPGet, tcpSocket: p.TCPSocket, grpc: p.GRPC}
	errs := validateHandler(h, grace, fld)
	errs = append(errs, validateNonnegative(int64(p.InitialDelaySeconds), fld.Child("initialDelaySeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.TimeoutSeconds), fld.Child("timeoutSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.PeriodSeconds), fld.Child("periodSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.SuccessThreshold), fld.Child("successThreshold"))...)
	errs = append(errs, validateNonnegative(int64(p.FailureThreshold), fld.Child("failureThreshold"))...)
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(fld.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	return errs
}

// validateHandler requires exactly one action and validates it.
func validateHandler(h handler, grace *int64, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	add := func(name string, set bool, validate func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(fld.Child(name), "may not specify more than 1 handler type"))
			return
		}
		n++
		errs = append(errs, validate(fld.Child(name))...)
	}
	add("exec", h.exec != nil, func(f *field.Path) field.ErrorList {
		if len(h.exec.Command) == 0 {
			return field.ErrorList{field.Required(f.Child("command"), "")}
		}
		return nil
	})
	add("httpGet", h.httpGet != nil, func(f *field.Path) field.ErrorList { return validateHTTPGet(h.httpGet, f) })
	add("tcpSocket", h.tcpSocket != nil, func(f *field.Path) field.ErrorList {
		return validatePortNumOrName(h.tcpSocket.Port, f.Child("port"))
	})
	add("grpc", h.grpc != nil, func(f *field.Path) field.ErrorList {
		return validatePortNumOrName(intstr.FromInt32(h.grpc.Port), f.Child("port"))
	})
	add("sleep", h.sleep != nil, func(f *field.Path) field.ErrorList {
		if grace != nil && (h.sleep.Seconds < 0 || h.sleep.Seconds > *grace) {
			return field.ErrorList{field.Invalid(f, h.sleep.Seconds, fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *grace))}
		}
		return nil
	})
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a handler type"))
	}
	return errs
}

func validateHTTPGet(h *corev1.HTTPGetAction, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	errs = append(errs, validatePortNumOrName(h.Port, fld.Child("port"))...)
	if h.Scheme != corev1.URISchemeHTTP && h.Scheme != corev1.URISchemeHTTPS {
		errs = append(errs, field.NotSupported(fld.Child("scheme"), h.Scheme, []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}))
	}
	for _, header := range h.HTTPHeaders {
		errs = append(errs, messages(fld.Child("httpHeaders"), header.Name, validation.IsHTTPHeaderName(header.Name))...)
	}
	return errs
}

func validatePortNumOrName(port intstr.IntOrString, fld *field.Path) field.ErrorList {
	switch port.Type {
	case intstr.Int:
		return messages(fld, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
	case intstr.String:
		return messages(fld, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
	return field.ErrorList{field.InternalError(fld, fmt.Errorf("unknown type: %v", port.Type))}
}

func validateSecurityContext(sc *corev1.SecurityContext, fld *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	if sc.RunAsUser != nil {
		errs = append(errs, messages(fld.Child("runAsUser"), *sc.RunAsUser, validation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, messages(fld.Child("runAsGroup"), *sc.RunAsGroup, validation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if pm := sc.ProcMount; pm != nil && *pm != corev1.DefaultProcMount && *pm != corev1.UnmaskedProcMount {
		errs = append(errs, field.NotSupported(fld.Child("procMount"), *pm, []corev1.ProcMountType{corev1.DefaultProcMount, corev1.UnmaskedProcMount}))
	}
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, fld.Child("seccompProfile"))...)
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, field.Invalid(fld, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				if c == "CAP_SYS_ADMIN" {
					errs = append(errs, field.Invalid(fld, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
				}
			}
		}
	}
	return errs
}

// validateVolumeMounts checks that mounts name declared volumes at unique
// paths.
func validateVolumeMounts(mounts []corev1.VolumeMount, vols map[string]corev1.VolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		idx := fld.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		}
		if _, ok := vols[m.Name]; !ok {
			errs = append(errs, field.NotFound(idx.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(idx.Child("mountPath"), ""))
		}
		if paths[m.MountPath] {
			errs = append(errs, field.Invalid(idx.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
		// Kubernetes reports subPath errors without the mount's index.
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(m.SubPath, fld.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(idx.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(m.SubPathExpr, fld.Child("subPathExpr"))...)
		}
		if p := m.MountPropagation; p != nil {
			valid := []corev1.MountPropagationMode{corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}
			if *p != corev1.MountPropagationBidirectional && *p != corev1.MountPropagationHostToContainer && *p != corev1.MountPropagationNone {
				errs = append(errs, field.NotSupported(fld.Child("mountPropagation"), *p, valid))
			}
		}
	}
	return errs
}

func validateVolumeDevices(devices []corev1.VolumeDevice, vols map[string]corev1.VolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, d := range devices {
		idx := fld.Index(i)
		if d.Name == "" {
			errs = append(errs, field.Required(idx.Child("name"), ""))
		}
		src, ok := vols[d.Name]
		switch {
		case !ok:
			errs = append(errs, field.NotFound(idx.Child("name"), d.Name))
		case src.PersistentVolumeClaim == nil && src.Ephemeral == nil:
			errs = append(errs, field.Invalid(idx.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if d.DevicePath == "" {
			errs = append(errs, field.Required(idx.Child("devicePath"), ""))
		}
		if paths[d.DevicePath] {
			errs = append(errs, field.Invalid(idx.Child("devicePath"), d.DevicePath, "must be unique"))
		}
		paths[d.DevicePath] = true
	}
	return errs
}

func validatePathNoBacksteps(p string, fld *field.Path) field.ErrorList {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(fld, p, "must not contain '..'")}
		}
	}
	return nil
}

func validateLocalDescendingPath(p string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(p) {
		errs = append(errs, field.Invalid(fld, p, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(p, fld)...)
}

func validateLocalNonReservedPath(p string, fld *field.Path) field.ErrorList {
	errs := validateLocalDescendingPath(p, fld)
	if strings.HasPrefix(p, "..") && !strings.HasPrefix(p, "../") {
		errs = append(errs, field.Invalid(fld, p, "must not start with '..'"))
	}
	return errs
}
