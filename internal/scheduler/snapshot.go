package scheduler

import (
	corev1 "k8s.io/api/core/v1"
)

// nodeInfo is a node and what the pods on it (bound or assumed) use.
type nodeInfo struct {
	node *corev1.Node
	// taints are the node's taints plus the not-ready or unreachable
	// taint the node lifecycle controller would add to a node that is
	// not Ready.
	taints      []corev1.Taint
	allocatable resources
	allowedPods int64
	pods        []*corev1.Pod
	requested   resources // sum of the pods' requests
	nonZero     resources // the same with scoring defaults
	ports       []hostPort
}

// hostPort is a host port in use on a node.
type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

func (p hostPort) conflicts(o hostPort) bool {
	if p.port != o.port || p.protocol != o.protocol {
		return false
	}
	return p.ip == o.ip || isAnyIP(p.ip) || isAnyIP(o.ip)
}

func isAnyIP(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.HostPort <= 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, hostPort{ip: p.HostIP, protocol: proto, port: p.HostPort})
		}
	}
	return out
}

func newNodeInfo(node *corev1.Node) *nodeInfo {
	ni := &nodeInfo{node: node, taints: node.Spec.Taints}
	alloc := node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = node.Status.Capacity
	}
	ni.allocatable = listResources(alloc)
	if q, ok := alloc[corev1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	}
	if key := notReadyTaint(node); key != "" {
		has := false
		for _, t := range node.Spec.Taints {
			if t.Key == key && t.Effect == corev1.TaintEffectNoSchedule {
				has = true
			}
		}
		if !has {
			ni.taints = append(append([]corev1.Taint(nil), node.Spec.Taints...),
				corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	return ni
}

// notReadyTaint returns the taint key a node that is not Ready carries
// ("" for a Ready node).
func notReadyTaint(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return ""
		case corev1.ConditionUnknown:
			return corev1.TaintNodeUnreachable
		}
		return corev1.TaintNodeNotReady
	}
	return corev1.TaintNodeNotReady
}

// podUsage is what a bound pod takes from its node.
type podUsage struct {
	requests, nonZero resources
	ports             []hostPort
}

func usageOf(pod *corev1.Pod) podUsage {
	return podUsage{requests: podRequests(pod, false), nonZero: podRequests(pod, true), ports: podHostPorts(pod)}
}

func (ni *nodeInfo) addPod(pod *corev1.Pod, u podUsage) {
	ni.pods = append(ni.pods, pod)
	ni.requested.add(u.requests)
	ni.nonZero.add(u.nonZero)
	ni.ports = append(ni.ports, u.ports...)
}

// snapshot is the cluster as one scheduling cycle sees it. Pods the
// cycle places are added to it, so later pods of the cycle see them.
type snapshot struct {
	nodes  []*nodeInfo
	byName map[string]*nodeInfo
	// withAntiAffinity are the pods that have required anti-affinity
	// terms, which the incoming pod must not violate.
	withAntiAffinity []*corev1.Pod
	// withPodAffinity are the pods that have any pod (anti-)affinity.
	withPodAffinity []*corev1.Pod
	// namespaceLabels are the labels of each namespace, for the
	// namespaceSelector of pod (anti-)affinity terms.
	namespaceLabels map[string]map[string]string
}

func newSnapshot(nodes []*corev1.Node) *snapshot {
	s := &snapshot{nodes: make([]*nodeInfo, 0, len(nodes)), byName: make(map[string]*nodeInfo, len(nodes))}
	for _, n := range nodes {
		ni := newNodeInfo(n)
		s.nodes = append(s.nodes, ni)
		s.byName[n.Name] = ni
	}
	return s
}

// addPod counts pod on node (ignored when the node is unknown).
func (s *snapshot) addPod(pod *corev1.Pod, node string) {
	s.addPodUsage(pod, node, usageOf(pod))
}

// addPodUsage is addPod with the pod's usage already computed.
func (s *snapshot) addPodUsage(pod *corev1.Pod, node string, u podUsage) {
	ni := s.byName[node]
	if ni == nil {
		return
	}
	ni.addPod(pod, u)
	if a := pod.Spec.Affinity; a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil) {
		s.withPodAffinity = append(s.withPodAffinity, pod)
	}
	if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil &&
		len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
		s.withAntiAffinity = append(s.withAntiAffinity, pod)
	}
}

// terminal says whether a pod no longer uses its node's resources.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
