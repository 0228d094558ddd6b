package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Summary is the kubelet's stats summary (/stats/summary), a subset of
// k8s.io/kubelet/pkg/apis/stats/v1alpha1 with its JSON names.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is the node's usage.
type NodeStats struct {
	NodeName  string       `json:"nodeName"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// PodStats is one pod's usage, the sum of its containers'.
type PodStats struct {
	PodRef     PodReference     `json:"podRef"`
	StartTime  metav1.Time      `json:"startTime"`
	Containers []ContainerStats `json:"containers"`
	CPU        *CPUStats        `json:"cpu,omitempty"`
	Memory     *MemoryStats     `json:"memory,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// ContainerStats is one container's usage.
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// CPUStats is CPU usage: a rate over the last interval and a cumulative
// total.
type CPUStats struct {
	Time                 metav1.Time `json:"time"`
	UsageNanoCores       *uint64     `json:"usageNanoCores,omitempty"`
	UsageCoreNanoSeconds *uint64     `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is memory usage in bytes.
type MemoryStats struct {
	Time            metav1.Time `json:"time"`
	UsageBytes      *uint64     `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64     `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64     `json:"rssBytes,omitempty"`
}

// cpuSample is a cumulative CPU time at an instant.
type cpuSample struct {
	at    time.Time
	total uint64
}

// rates turns cumulative CPU samples into usage rates; it remembers the
// last sample per key (a container ID, or "" for the node).
type rates struct {
	mu     sync.Mutex // guards last and pruned
	last   map[string]cpuSample
	pruned time.Time // when samples of removed containers were last dropped
}

// rateMemory is how long a sample is kept for a key not sampled again (a
// removed container's).
const rateMemory = 10 * time.Minute

// cpu returns CPUStats for a sample, with a rate when an earlier sample of
// key is known.
func (r *rates) cpu(key string, s cpuSample) *CPUStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[string]cpuSample{}
	}
	total := s.total
	out := &CPUStats{Time: metav1.NewTime(s.at), UsageCoreNanoSeconds: &total}
	if prev, ok := r.last[key]; ok && s.at.After(prev.at) && s.total >= prev.total {
		rate := uint64(float64(s.total-prev.total) / s.at.Sub(prev.at).Seconds())
		out.UsageNanoCores = &rate
	}
	r.last[key] = s
	if s.at.Sub(r.pruned) > rateMemory {
		for k, v := range r.last {
			if s.at.Sub(v.at) > rateMemory {
				delete(r.last, k)
			}
		}
		r.pruned = s.at
	}
	return out
}

// summary serves /stats/summary.
func (s *server) summary(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	sum := Summary{Node: NodeStats{NodeName: s.nodeName()}, Pods: []PodStats{}}
	if boot, err := bootTime(); err == nil {
		sum.Node.StartTime = metav1.NewTime(boot)
	}
	if total, err := procCPUNanos(); err == nil {
		sum.Node.CPU = s.rates.cpu("", cpuSample{at: now, total: total})
	} else {
		s.log.WithError(err).Debug("stats: node cpu")
	}
	if m, err := procMemory(); err == nil {
		sum.Node.Memory = &MemoryStats{Time: metav1.NewTime(now), UsageBytes: &m.usage, WorkingSetBytes: &m.workingSet, RSSBytes: &m.rss}
	} else {
		s.log.WithError(err).Debug("stats: node memory")
	}
	pods := s.podList()
	samples := s.sampleAll(r.Context(), pods)
	for i, p := range pods {
		sum.Pods = append(sum.Pods, s.podStats(p.Namespace, p.Name, string(p.UID), p.Status.StartTime, samples[i]))
	}
	writeJSON(w, sum)
}

// statsSamplers bounds the runtime stats requests of one summary in flight.
const statsSamplers = 32

// containerSample is one container's stats, or its error.
type containerSample struct {
	name, id string
	stats    runtime.ContainerStats
	err      error
}

// sampleAll samples every container of pods at once: Docker answers each
// stats request at its next collection tick (up to a second), so sampling
// in turn would cost a second per container.
func (s *server) sampleAll(ctx context.Context, pods []*corev1.Pod) [][]containerSample {
	out := make([][]containerSample, len(pods))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsSamplers)
	for i, p := range pods {
		names := containerNames(p)
		out[i] = make([]containerSample, len(names))
		for j, c := range names {
			cs := &out[i][j]
			cs.name = c
			if cs.id, cs.err = s.cfg.Container(p.Namespace, p.Name, c, false); cs.err != nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				cs.stats, cs.err = s.cfg.Runtime.Stats(ctx, cs.id)
			}()
		}
	}
	wg.Wait()
	return out
}

// podStats sums the samples of a pod's running containers.
func (s *server) podStats(ns, name, uid string, start *metav1.Time, samples []containerSample) PodStats {
	ps := PodStats{PodRef: PodReference{Name: name, Namespace: ns, UID: uid}, Containers: []ContainerStats{}}
	if start != nil {
		ps.StartTime = *start
	}
	var cpuTotal, memUsage, memWS uint64
	var cpuRate uint64
	haveRate, any := false, false
	var at time.Time
	for _, sample := range samples {
		if sample.err != nil {
			continue
		}
		c, id, st := sample.name, sample.id, sample.stats
		any = true
		at = st.Time
		cpu := s.rates.cpu(id, cpuSample{at: st.Time, total: st.CPUUsageNanoSeconds})
		usage, ws := st.MemoryUsageBytes, st.MemoryWorkingSetBytes
		ps.Containers = append(ps.Containers, ContainerStats{
			Name: c, CPU: cpu,
			Memory: &MemoryStats{Time: metav1.NewTime(st.Time), UsageBytes: &usage, WorkingSetBytes: &ws},
		})
		cpuTotal += st.CPUUsageNanoSeconds
		memUsage += usage
		memWS += ws
		if cpu.UsageNanoCores != nil {
			cpuRate += *cpu.UsageNanoCores
			haveRate = true
		}
	}
	if any {
		ps.CPU = &CPUStats{Time: metav1.NewTime(at), UsageCoreNanoSeconds: &cpuTotal}
		if haveRate {
			ps.CPU.UsageNanoCores = &cpuRate
		}
		ps.Memory = &MemoryStats{Time: metav1.NewTime(at), UsageBytes: &memUsage, WorkingSetBytes: &memWS}
	}
	return ps
}

// nodeName names this node.
func (s *server) nodeName() string {
	if s.cfg.Node != nil {
		if n := s.cfg.Node(); n != nil {
			return n.Name
		}
	}
	return s.cfg.NodeName
}
