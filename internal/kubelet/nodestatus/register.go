package nodestatus

import (
	"context"
	"fmt"
	goruntime "runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Well-known labels the kubelet (and k3s) put on a node.
const (
	LabelHostname      = "kubernetes.io/hostname"
	LabelOS            = "kubernetes.io/os"
	LabelArch          = "kubernetes.io/arch"
	LabelBetaOS        = "beta.kubernetes.io/os"
	LabelBetaArch      = "beta.kubernetes.io/arch"
	LabelInstanceType  = "node.kubernetes.io/instance-type"
	LabelControlPlane  = "node-role.kubernetes.io/control-plane"
	LabelMaster        = "node-role.kubernetes.io/master"
	InstanceTypeMizzen = "mizzen"
)

// Registration retries back off as the kubelet's do.
const (
	registerFirstDelay = 100 * time.Millisecond
	registerMaxDelay   = 7 * time.Second
)

// labels returns the labels this node owns: the defaults, --node-label
// values and the role labels.
func (a *Agent) labels() map[string]string {
	l := map[string]string{
		LabelHostname:     a.cfg.NodeName,
		LabelOS:           goruntime.GOOS,
		LabelArch:         goruntime.GOARCH,
		LabelBetaOS:       goruntime.GOOS,
		LabelBetaArch:     goruntime.GOARCH,
		LabelInstanceType: InstanceTypeMizzen,
	}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	if a.cfg.ControlPlane {
		l[LabelControlPlane] = "true"
		l[LabelMaster] = "true"
	}
	return l
}

// register creates the Node, or adopts an existing one of the same name,
// retrying with back-off until it works or ctx is done.
func (a *Agent) register(ctx context.Context) error {
	delay := registerFirstDelay
	for {
		err := a.tryRegister(ctx)
		if err == nil {
			return nil
		}
		a.log.WithError(err).Warn("Unable to register node, retrying")
		if !a.wait(ctx, delay) {
			return ctx.Err()
		}
		delay = min(2*delay, registerMaxDelay)
	}
}

func (a *Agent) tryRegister(ctx context.Context) error {
	st, err := a.computeStatus(ctx, nil)
	if err != nil {
		return err
	}
	want := &corev1.Node{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.labels()},
		Spec:       corev1.NodeSpec{Taints: append([]corev1.Taint(nil), a.cfg.Taints...)},
		Status:     st,
	}
	out, err := a.cfg.Client.Create(ctx, want)
	switch {
	case err == nil:
		node := asNode(out, want)
		a.setNode(node)
		a.log.WithField("node", node.Name).Info("Node registered")
		a.event(node, corev1.EventTypeNormal, "Starting", "Starting kubelet.")
		// The Node was created with these conditions: each is new.
		a.recordTransitions(node, nil, st.Conditions)
		a.lastReport = a.clock.Now()
		return nil
	case !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("create node %s: %w", a.cfg.NodeName, err)
	}
	node, err := a.adopt(ctx, want.Labels)
	if err != nil {
		return err
	}
	a.setNode(node)
	a.log.WithField("node", node.Name).Info("Node already registered, adopted it")
	a.event(node, corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	return nil
}

// adopt reads the existing Node and sets the labels this node owns,
// keeping everything else (taints, podCIDR, other labels). Its status is
// the status loop's to write.
func (a *Agent) adopt(ctx context.Context, labels map[string]string) (*corev1.Node, error) {
	cur := &corev1.Node{}
	if err := a.cfg.Client.Get(ctx, cur, "", a.cfg.NodeName); err != nil {
		return nil, fmt.Errorf("get existing node %s: %w", a.cfg.NodeName, err)
	}
	if !needsLabels(cur, labels) {
		return cur, nil
	}
	upd := cur.DeepCopy()
	if upd.Labels == nil {
		upd.Labels = map[string]string{}
	}
	for k, v := range labels {
		upd.Labels[k] = v
	}
	out, err := a.cfg.Client.Update(ctx, upd)
	if err != nil {
		return nil, fmt.Errorf("update labels of node %s: %w", a.cfg.NodeName, err)
	}
	return asNode(out, upd), nil
}

// needsLabels reports whether n lacks any of labels or has another value.
func needsLabels(n *corev1.Node, labels map[string]string) bool {
	for k, v := range labels {
		if got, ok := n.Labels[k]; !ok || got != v {
			return true
		}
	}
	return false
}

// asNode returns what a write returned when it is a Node, else sent.
func asNode(out any, sent *corev1.Node) *corev1.Node {
	if n, ok := out.(*corev1.Node); ok && n != nil {
		return n
	}
	return sent
}
