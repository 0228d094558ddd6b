package runtime

import "strconv"

// The labels every container managed by mizzen carries. A node manages only
// the containers whose LabelNode is its name.
const (
	LabelNode             = "io.mizzen.node"
	LabelKind             = "io.mizzen.kind" // KindSandbox or KindContainer
	LabelPodUID           = "io.mizzen.pod.uid"
	LabelPodName          = "io.mizzen.pod.name"
	LabelPodNamespace     = "io.mizzen.pod.namespace"
	LabelSandboxID        = "io.mizzen.sandbox.id" // app containers: their sandbox
	LabelContainerName    = "io.mizzen.container.name"
	LabelContainerAttempt = "io.mizzen.container.attempt"
)

// Kind tells a pod's sandbox from its app containers.
type Kind string

// The kinds of containers.
const (
	KindSandbox   Kind = "sandbox"
	KindContainer Kind = "container"
)

// PodRef identifies the pod a container belongs to.
type PodRef struct {
	UID       string
	Name      string
	Namespace string
}

// Meta is what the labels of a managed container say about it.
type Meta struct {
	Node      string
	Kind      Kind
	Pod       PodRef
	SandboxID string // app containers only
	Name      string // the container's name in the pod spec; empty for a sandbox
	Attempt   int    // 0 for the first run, incremented on every restart
}

// Labels encodes m as container labels.
func (m Meta) Labels() map[string]string {
	l := map[string]string{
		LabelNode:             m.Node,
		LabelKind:             string(m.Kind),
		LabelPodUID:           m.Pod.UID,
		LabelPodName:          m.Pod.Name,
		LabelPodNamespace:     m.Pod.Namespace,
		LabelContainerAttempt: strconv.Itoa(m.Attempt),
	}
	if m.Kind == KindContainer {
		l[LabelContainerName] = m.Name
		l[LabelSandboxID] = m.SandboxID
	}
	return l
}

// ParseMeta decodes the labels of a managed container; ok is false when
// the labels are not mizzen's.
func ParseMeta(labels map[string]string) (m Meta, ok bool) {
	m = Meta{
		Node:      labels[LabelNode],
		Kind:      Kind(labels[LabelKind]),
		Pod:       PodRef{UID: labels[LabelPodUID], Name: labels[LabelPodName], Namespace: labels[LabelPodNamespace]},
		SandboxID: labels[LabelSandboxID],
		Name:      labels[LabelContainerName],
	}
	m.Attempt, _ = strconv.Atoi(labels[LabelContainerAttempt])
	ok = m.Node != "" && m.Pod.UID != "" && (m.Kind == KindSandbox || m.Kind == KindContainer)
	return m, ok
}

// MergeLabels returns extra with the labels of m on top (ours win): the
// labels an implementation puts on a container it creates.
func MergeLabels(m Meta, extra map[string]string) map[string]string {
	l := make(map[string]string, len(extra)+8)
	for k, v := range extra {
		l[k] = v
	}
	for k, v := range m.Labels() {
		l[k] = v
	}
	return l
}
