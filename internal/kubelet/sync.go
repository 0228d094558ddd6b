package kubelet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mizzen-dev/mizzen/internal/kubelet/prober"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
)

// sync brings the pod uid's containers in line with pod (nil: the pod is
// gone from the API). It returns when to sync again (0: the resync
// period), and finished once the pod is gone and cleaned up.
func (k *Kubelet) sync(ctx context.Context, uid types.UID, pod *corev1.Pod) (time.Duration, bool) {
	pc, err := k.gather(ctx, uid)
	if err != nil {
		if ctx.Err() == nil {
			k.log.WithError(err).WithField("pod", uid).Warn("list pod containers")
		}
		return 2 * time.Second, false
	}
	if pod == nil {
		if err := k.cleanup(ctx, uid, pc); err != nil {
			if ctx.Err() == nil {
				k.log.WithError(err).WithField("pod", uid).Warn("clean up pod")
			}
			return 2 * time.Second, false
		}
		return 0, true
	}
	mem := k.memory(uid)
	if pod.DeletionTimestamp != nil {
		return k.terminate(ctx, pod, pc, mem), false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Terminal pods stay so: nothing is restarted, the sandbox
		// goes, exited containers stay for their logs until deletion.
		k.probes.Remove(uid)
		k.stopRunning(ctx, pod, pc, 0)
		return 0, false
	}
	next := k.run(ctx, pod, pc, mem)
	return next, false
}

// run is the sync of a live pod.
func (k *Kubelet) run(ctx context.Context, pod *corev1.Pod, pc *podContainers, mem *podMemory) time.Duration {
	log := k.log.WithField("pod", pod.Namespace+"/"+pod.Name)
	var next time.Duration
	soon := func(d time.Duration) {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	report := func() time.Duration {
		k.reportStatus(ctx, pod, pc, mem)
		return next
	}

	// A pod whose containers have all finished for good is done: it
	// gets no new sandbox, and its status turns terminal.
	if phase := k.phase(pod, pc, mem); phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		k.probes.Remove(pod.UID)
		k.stopRunning(ctx, pod, pc, 0)
		return report()
	}

	sb := pc.sandbox()
	if sb == nil || sb.State != rt.StateRunning || k.lacksAddress(pod, sb) {
		if sb != nil {
			k.event(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		}
		if err := k.newSandbox(ctx, pod, pc); err != nil {
			log.WithError(err).Warn("create pod sandbox")
			k.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
			for _, c := range allContainers(pod) {
				mem.setWaiting(c.Name, "ContainerCreating", "")
			}
			k.reportStatus(ctx, pod, pc, mem)
			return 5 * time.Second
		}
		var err error
		if pc, err = k.gather(ctx, pod.UID); err != nil {
			return 2 * time.Second
		}
		sb = pc.sandbox()
		if sb == nil || sb.State != rt.StateRunning {
			return 2 * time.Second
		}
	}
	podIP := k.podIP(pod, sb)

	vols, err := k.cfg.Volumes.Setup(ctx, pod)
	if err != nil {
		msg := err.Error()
		k.event(pod, corev1.EventTypeWarning, "FailedMount", msg)
		for _, c := range allContainers(pod) {
			if pc.latest(c.Name) == nil {
				mem.setWaiting(c.Name, "ContainerCreating", "")
			}
		}
		soon(5 * time.Second)
		return report()
	}
	var hosts string
	if !pod.Spec.HostNetwork {
		if hosts, err = k.cfg.Volumes.EtcHosts(pod, []string{podIP}); err != nil {
			log.WithError(err).Warn("write /etc/hosts")
		}
	}
	env := &startEnv{pod: pod, sandbox: sb, podIP: podIP, vols: vols, hosts: hosts, mem: mem}

	// Init containers run one at a time, each to success, before any
	// app container starts.
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		inst := pc.latest(c.Name)
		switch {
		case inst == nil:
			k.startContainer(ctx, env, c, 0)
			return report()
		case inst.State == rt.StateCreated:
			k.startCreated(ctx, env, c, inst)
			return report()
		case inst.State == rt.StateRunning:
			mem.setWaiting(c.Name, "", "")
			return report()
		case inst.ExitCode == 0:
			continue
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return report() // phase turns Failed
		default:
			soon(k.restartAfterBackoff(ctx, env, c, inst))
			return report()
		}
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		inst := pc.latest(c.Name)
		switch {
		case inst == nil:
			k.startContainer(ctx, env, c, 0)
		case inst.State == rt.StateCreated:
			k.startCreated(ctx, env, c, inst)
		case inst.State == rt.StateRunning:
			if msg, kill := k.probeKill(pod, c, inst); kill {
				k.event(pod, corev1.EventTypeNormal, "Killing", msg)
				k.stopContainer(ctx, pod, c, inst, gracePeriod(pod))
				soon(time.Millisecond)
			}
		case shouldRestart(pod.Spec.RestartPolicy, inst.ExitCode):
			soon(k.restartAfterBackoff(ctx, env, c, inst))
		}
	}
	k.prune(ctx, pc)
	if pc, err = k.regather(ctx, pc, pod.UID); err != nil {
		return 2 * time.Second
	}
	k.syncProbes(pod, pc, podIP)
	return report()
}

// restartAfterBackoff starts a new instance of the exited container inst
// unless it is in back-off; it returns how long the back-off still runs.
func (k *Kubelet) restartAfterBackoff(ctx context.Context, env *startEnv, c *corev1.Container, inst *rt.ContainerStatus) time.Duration {
	key := string(env.pod.UID) + "/" + c.Name
	if wait := k.restart.waitFor(key, inst.FinishedAt); wait > 0 {
		msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
			k.restart.current(key), c.Name, env.pod.Name, env.pod.Namespace, env.pod.UID)
		if w := env.mem.waiting[c.Name]; w.reason != "CrashLoopBackOff" {
			k.event(env.pod, corev1.EventTypeWarning, "BackOff",
				fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, env.pod.Name, env.pod.Namespace, env.pod.UID))
		}
		env.mem.setWaiting(c.Name, "CrashLoopBackOff", msg)
		return wait
	}
	k.restart.next(key, inst.FinishedAt)
	k.startContainer(ctx, env, c, inst.Meta.Attempt+1)
	return 0
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(p corev1.RestartPolicy, exitCode int) bool {
	switch p {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// probeKill reports whether a running container failed its liveness or
// startup probe, with the kill message the kubelet gives.
func (k *Kubelet) probeKill(pod *corev1.Pod, c *corev1.Container, inst *rt.ContainerStatus) (string, bool) {
	if failed, _ := k.probes.LivenessFailure(pod.UID, inst.ID); failed {
		return fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name), true
	}
	if failed, _ := k.probes.StartupFailure(pod.UID, inst.ID); failed {
		return fmt.Sprintf("Container %s failed startup probe, will be restarted", c.Name), true
	}
	return "", false
}

// syncProbes declares the running containers to the prober.
func (k *Kubelet) syncProbes(pod *corev1.Pod, pc *podContainers, podIP string) {
	var targets []prober.Target
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		inst := pc.latest(c.Name)
		if inst == nil || inst.State != rt.StateRunning {
			continue
		}
		targets = append(targets, prober.Target{Pod: pod, Container: c.Name, ContainerID: inst.ID, StartedAt: inst.StartedAt, PodIP: podIP})
	}
	k.probes.Sync(pod.UID, targets)
}

// newSandbox stops whatever the pod still runs (its containers lost
// their namespaces with the old sandbox) and starts a new sandbox.
func (k *Kubelet) newSandbox(ctx context.Context, pod *corev1.Pod, pc *podContainers) error {
	k.stopRunning(ctx, pod, pc, 0)
	attempt := 0
	if sb := pc.sandbox(); sb != nil {
		attempt = sb.Meta.Attempt + 1
	}
	for _, sb := range pc.sandboxes {
		_ = k.rt.RemoveContainer(ctx, sb.ID)
		k.inspect.forget(sb.ID)
		k.teardown(ctx, sb.ID)
	}
	dns := k.dnsConfig(pod)
	spec := rt.SandboxSpec{
		Node: k.cfg.NodeName, Pod: podRef(pod), Attempt: attempt, Image: k.cfg.SandboxImage,
		Hostname: hostname(pod), HostNetwork: pod.Spec.HostNetwork, DNS: dns,
	}
	if !pod.Spec.HostNetwork && k.cfg.PodNetwork == nil {
		spec.Network = k.cfg.Network
	}
	id, err := k.rt.CreateSandbox(ctx, spec)
	if errors.Is(err, rt.ErrAlreadyExists) {
		spec.Attempt++ // a sandbox we did not list (created meanwhile): go past it
		id, err = k.rt.CreateSandbox(ctx, spec)
	}
	if err != nil {
		return err
	}
	if err := k.rt.StartContainer(ctx, id); err != nil {
		_ = k.rt.RemoveContainer(ctx, id)
		return err
	}
	if pod.Spec.HostNetwork || k.cfg.PodNetwork == nil {
		return nil
	}
	if err := k.setUpNetwork(ctx, id); err != nil {
		_ = k.rt.RemoveContainer(ctx, id)
		k.teardown(ctx, id)
		return err
	}
	return nil
}

// setUpNetwork gives the running sandbox id its pod IP.
func (k *Kubelet) setUpNetwork(ctx context.Context, id string) error {
	st, err := k.rt.InspectContainer(ctx, id)
	if err != nil {
		return err
	}
	if st.PID == 0 {
		return fmt.Errorf("set up pod network: sandbox %.12s is not running", id)
	}
	if _, err := k.cfg.PodNetwork.SetUp(ctx, id, fmt.Sprintf("/proc/%d/ns/net", st.PID)); err != nil {
		return fmt.Errorf("set up pod network: %w", err)
	}
	return nil
}

// hasAddress reports whether the pod network has an address for sandbox id.
func (k *Kubelet) hasAddress(id string) bool {
	return k.cfg.PodNetwork != nil && k.cfg.PodNetwork.IP(id).IsValid()
}

// teardown releases the pod IP of sandbox id (when there is a pod network).
func (k *Kubelet) teardown(ctx context.Context, id string) {
	if k.cfg.PodNetwork == nil {
		return
	}
	if err := k.cfg.PodNetwork.TearDown(ctx, id); err != nil && ctx.Err() == nil {
		k.log.WithError(err).WithField("sandbox", id[:min(12, len(id))]).Warn("tear down pod network")
	}
}

// lacksAddress reports whether the pod network has no address for the
// pod's sandbox sb: the agent stopped between starting the sandbox and
// setting up its network, or its allocation was lost. Such a sandbox is
// replaced, as the kubelet replaces a sandbox whose status has no IP.
func (k *Kubelet) lacksAddress(pod *corev1.Pod, sb *rt.ContainerStatus) bool {
	return !pod.Spec.HostNetwork && k.cfg.PodNetwork != nil && !k.cfg.PodNetwork.IP(sb.ID).IsValid()
}

// podIP is the pod's address: the sandbox's, or the node's for host
// network pods.
func (k *Kubelet) podIP(pod *corev1.Pod, sb *rt.ContainerStatus) string {
	switch {
	case pod.Spec.HostNetwork:
		return k.cfg.HostIP
	case sb == nil:
		return ""
	case k.cfg.PodNetwork != nil:
		if ip := k.cfg.PodNetwork.IP(sb.ID); ip.IsValid() && sb.State == rt.StateRunning {
			return ip.String()
		}
		return ""
	}
	return sb.IP
}

// prune removes instances older than the previous one of each container
// (the previous one stays for `kubectl logs --previous`).
func (k *Kubelet) prune(ctx context.Context, pc *podContainers) {
	for _, cs := range pc.byName {
		for i := 2; i < len(cs); i++ {
			if cs[i].State != rt.StateRunning {
				_ = k.rt.RemoveContainer(ctx, cs[i].ID)
				k.inspect.forget(cs[i].ID)
			}
		}
	}
}

// allContainers returns the pod's init and app containers.
func allContainers(pod *corev1.Pod) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

func podRef(pod *corev1.Pod) rt.PodRef {
	return rt.PodRef{UID: string(pod.UID), Name: pod.Name, Namespace: pod.Namespace}
}

// hostname is the pod's hostname: spec.hostname, else its name cut to 63
// characters.
func hostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = h[:63]
	}
	for len(h) > 0 && (h[len(h)-1] == '-' || h[len(h)-1] == '.') {
		h = h[:len(h)-1]
	}
	return h
}

// dnsConfig is the resolv.conf of the pod's sandbox for its dnsPolicy,
// formed as the kubelet forms it.
func (k *Kubelet) dnsConfig(pod *corev1.Pod) rt.DNSConfig {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if (policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet) && len(k.cfg.ClusterDNS) == 0 {
		k.event(pod, corev1.EventTypeWarning, "MissingClusterDNS", fmt.Sprintf(
			"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
			pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", policy, corev1.DNSDefault))
		policy = corev1.DNSDefault
	}
	dc := pod.Spec.DNSConfig
	var d rt.DNSConfig
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		d.Servers = append(d.Servers, k.cfg.ClusterDNS...)
		domain := k.cfg.ClusterDomain
		d.Searches = append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, k.cfg.HostDNS.Searches...)
		d.Options = []string{"ndots:5"}
	case corev1.DNSDefault:
		// Without a dnsConfig the runtime copies the host's file as it
		// is; with one, the host's settings are the start.
		if dc != nil {
			h := k.cfg.HostDNS
			d = rt.DNSConfig{Servers: slices.Clone(h.Servers), Searches: slices.Clone(h.Searches), Options: slices.Clone(h.Options)}
		}
	}
	if dc != nil {
		d.Servers = appendNew(d.Servers, dc.Nameservers...)
		d.Searches = appendNew(d.Searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			// An option of the pod's replaces the policy's of that name
			// (ndots:5), as the kubelet merges them.
			replaced := false
			for i, have := range d.Options {
				if name, _, _ := strings.Cut(have, ":"); name == o.Name {
					d.Options[i], replaced = opt, true
				}
			}
			if !replaced {
				d.Options = append(d.Options, opt)
			}
		}
	}
	// The resolver's limits, with the kubelet's events.
	if len(d.Servers) > maxDNSNameservers {
		d.Servers = d.Servers[:maxDNSNameservers]
		k.event(pod, corev1.EventTypeWarning, "DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "+strings.Join(d.Servers, " "))
	}
	if len(d.Searches) > maxDNSSearches {
		d.Searches = d.Searches[:maxDNSSearches]
		k.event(pod, corev1.EventTypeWarning, "DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "+strings.Join(d.Searches, " "))
	}
	return d
}

// The limits the kubelet applies to a pod's resolv.conf.
const (
	maxDNSNameservers = 3
	maxDNSSearches    = 32
)

// appendNew appends the values not already in list, in order.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
