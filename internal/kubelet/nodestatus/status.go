package nodestatus

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The kubelet's default hard eviction thresholds, which allocatable
// leaves out and the pressure conditions watch.
var (
	evictionMemory           = resource.MustParse("100Mi")
	evictionDiskFraction     = 0.10
	pidPressureFraction      = 0.90
	defaultRequiredLabelKeys = []string{LabelHostname, LabelOS, LabelArch, LabelBetaOS, LabelBetaArch}
)

// runStatus reports status every StatusInterval, or at once when kicked,
// until ctx is done.
func (a *Agent) runStatus(ctx context.Context) {
	for {
		if err := a.syncStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.WithError(err).Warn("Unable to update node status")
		}
		t := a.clock.NewTimer(a.cfg.StatusInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-a.kick:
			t.Stop()
		}
	}
}

// syncStatus reads the Node, computes its status and patches it when it
// changed (heartbeats aside) or when ReportInterval has passed since the
// last write.
func (a *Agent) syncStatus(ctx context.Context) error {
	cur := &corev1.Node{}
	if err := a.cfg.Client.Get(ctx, cur, "", a.cfg.NodeName); err != nil {
		return fmt.Errorf("get node %s: %w", a.cfg.NodeName, err)
	}
	if err := a.ensureLabels(ctx, cur); err != nil {
		return err
	}
	st, err := a.computeStatus(ctx, &cur.Status)
	if err != nil {
		return err
	}
	if !statusChanged(&cur.Status, &st) && a.clock.Since(a.lastReport) < ReportInterval {
		a.setNode(cur)
		return nil
	}
	data, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return fmt.Errorf("encode node status: %w", err)
	}
	target := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
	out, err := a.cfg.Client.Patch(ctx, target, types.MergePatchType, data, "status")
	if err != nil {
		return fmt.Errorf("patch status of node %s: %w", a.cfg.NodeName, err)
	}
	a.lastReport = a.clock.Now()
	node := asNode(out, target)
	if node == target {
		node = cur.DeepCopy()
		node.Status = st
	}
	a.setNode(node)
	a.recordTransitions(node, cur.Status.Conditions, st.Conditions)
	return nil
}

// ensureLabels puts back the default labels when someone removed them,
// as the kubelet does on each status update.
func (a *Agent) ensureLabels(ctx context.Context, cur *corev1.Node) error {
	want := a.labels()
	missing := map[string]string{}
	for _, k := range defaultRequiredLabelKeys {
		if _, ok := cur.Labels[k]; !ok {
			missing[k] = want[k]
		}
	}
	if len(missing) == 0 {
		return nil
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": missing}})
	if err != nil {
		return fmt.Errorf("encode node labels: %w", err)
	}
	target := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName}}
	if _, err := a.cfg.Client.Patch(ctx, target, types.MergePatchType, data, ""); err != nil {
		return fmt.Errorf("restore labels of node %s: %w", a.cfg.NodeName, err)
	}
	return nil
}

// computeStatus returns the status this node reports. old (may be nil)
// is the stored status: conditions keep their transition times and
// conditions of other types, nodeInfo keeps the runtime version when the
// runtime cannot be asked.
func (a *Agent) computeStatus(ctx context.Context, old *corev1.NodeStatus) (corev1.NodeStatus, error) {
	if old == nil {
		old = &corev1.NodeStatus{}
	}
	info, err := a.host.Info()
	if err != nil {
		return corev1.NodeStatus{}, fmt.Errorf("read host info: %w", err)
	}
	usage, err := a.host.Usage(a.cfg.DataDir)
	if err != nil {
		return corev1.NodeStatus{}, fmt.Errorf("read host usage: %w", err)
	}
	rtVersion := old.NodeInfo.ContainerRuntimeVersion
	v, rtErr := a.cfg.Runtime.Version(ctx)
	if rtErr == nil {
		rtVersion = v.String()
	}
	capacity, allocatable := a.resources(info, usage)
	var netErr error
	if rtErr == nil && a.cfg.NetworkReady != nil {
		netErr = a.cfg.NetworkReady()
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Conditions:  a.conditions(old.Conditions, usage, rtErr, netErr),
		Addresses:   a.addresses(),
		DaemonEndpoints: corev1.NodeDaemonEndpoints{
			KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.cfg.KubeletPort)},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               info.MachineID,
			SystemUUID:              info.SystemUUID,
			BootID:                  info.BootID,
			KernelVersion:           info.KernelVersion,
			OSImage:                 info.OSImage,
			ContainerRuntimeVersion: rtVersion,
			KubeletVersion:          a.cfg.Version,
			KubeProxyVersion:        a.cfg.Version,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}, nil
}

// resources returns capacity and allocatable: allocatable leaves out the
// hard eviction thresholds (memory.available<100Mi, nodefs.available<10%).
func (a *Agent) resources(info HostInfo, usage HostUsage) (capacity, allocatable corev1.ResourceList) {
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(info.CPUs)*1000, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(info.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(usage.DiskCapacity, resource.BinarySI),
	}
	allocatable = capacity.DeepCopy()
	mem := *resource.NewQuantity(max(0, info.MemoryBytes-evictionMemory.Value()), resource.BinarySI)
	allocatable[corev1.ResourceMemory] = mem
	disk := usage.DiskCapacity - int64(float64(usage.DiskCapacity)*evictionDiskFraction)
	allocatable[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(max(0, disk), resource.BinarySI)
	return capacity, allocatable
}

// addresses returns the InternalIPs, then the Hostname.
func (a *Agent) addresses() []corev1.NodeAddress {
	ips := a.cfg.NodeIPs
	if len(ips) == 0 {
		ip, err := a.host.DefaultAddress()
		if err != nil {
			a.log.WithError(err).Warn("Unable to find the node's IP address")
		} else {
			ips = append(ips, ip)
		}
	}
	var out []corev1.NodeAddress
	for _, ip := range ips {
		addr := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.Unmap().String()}
		if ip.IsValid() && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: a.cfg.NodeName})
}

// statusChanged reports whether the fields this package writes differ,
// ignoring the conditions' heartbeat times.
func statusChanged(old, cur *corev1.NodeStatus) bool {
	return !equality.Semantic.DeepEqual(old.Capacity, cur.Capacity) ||
		!equality.Semantic.DeepEqual(old.Allocatable, cur.Allocatable) ||
		!equality.Semantic.DeepEqual(old.Addresses, cur.Addresses) ||
		!equality.Semantic.DeepEqual(old.DaemonEndpoints, cur.DaemonEndpoints) ||
		!equality.Semantic.DeepEqual(old.NodeInfo, cur.NodeInfo) ||
		!equality.Semantic.DeepEqual(withoutHeartbeats(old.Conditions), withoutHeartbeats(cur.Conditions))
}

func withoutHeartbeats(cs []corev1.NodeCondition) []corev1.NodeCondition {
	out := make([]corev1.NodeCondition, len(cs))
	for i, c := range cs {
		c.LastHeartbeatTime = metav1.Time{}
		out[i] = c
	}
	return out
}
