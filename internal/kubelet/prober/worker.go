package prober

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
)

// maxAttempts is how often a worker tries a probe that could not be run
// before it gives up on that period, as the kubelet does.
const maxAttempts = 3

// worker runs one probe of one container instance until its context ends
// or the probe has nothing left to do.
type worker struct {
	m       *Manager
	inst    *instance
	kind    Kind
	probe   *corev1.Probe
	period  time.Duration
	delay   time.Duration
	success int           // successThreshold (1 for liveness and startup)
	failure int           // failureThreshold
	trigger chan struct{} // runs the probe now; buffered, one slot
	log     *logrus.Entry

	last   Result // the last result counted
	streak int    // how many times in a row it came
}

func newWorker(m *Manager, inst *instance, k Kind, p *corev1.Probe, log *logrus.Entry) *worker {
	w := &worker{
		m: m, inst: inst, kind: k, probe: p, log: log,
		period:  time.Duration(orDefault(p.PeriodSeconds, defaultPeriodSeconds)) * time.Second,
		delay:   time.Duration(max(p.InitialDelaySeconds, 0)) * time.Second,
		success: int(orDefault(p.SuccessThreshold, defaultSuccessThreshold)),
		failure: int(orDefault(p.FailureThreshold, defaultFailureThreshold)),
		trigger: make(chan struct{}, 1),
	}
	if k != Readiness {
		w.success = 1
	}
	return w
}

// run waits initialDelaySeconds from the container's start, then probes
// every periodSeconds (or at once when triggered) until ctx is done or
// the probe is settled for this instance.
func (w *worker) run(ctx context.Context) {
	defer w.m.wg.Done()
	clk := w.m.cfg.Clock
	t, _ := w.m.snapshot(w.inst)
	start := t.StartedAt
	if start.IsZero() {
		start = clk.Now()
	}
	if d := start.Add(w.delay).Sub(clk.Now()); d > 0 {
		t := clk.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
	ticker := clk.NewTicker(w.period)
	defer ticker.Stop()
	for w.step(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-w.trigger:
		}
	}
}

// step runs the probe once, if it should run now, and reports whether the
// worker should go on.
func (w *worker) step(ctx context.Context) bool {
	t, started := w.m.snapshot(w.inst)
	pod := t.Pod
	if pod.DeletionTimestamp != nil && w.kind != Readiness {
		// A pod shutting down is not restarted for failing probes.
		w.m.record(w.inst, w.kind, Success, "")
		return false
	}
	switch {
	case w.kind == Startup && started:
		return false
	case w.kind != Startup && !started:
		return true // until the startup probe succeeds
	}
	r, out := w.attempt(ctx, t)
	if ctx.Err() != nil {
		return false
	}
	// A trigger that came while probing is served by this probe.
	select {
	case <-w.trigger:
	default:
	}
	w.log.WithFields(logrus.Fields{"result": r, "output": out}).Debug("Probe ran")
	switch r {
	case Unknown:
		w.m.event(pod, "Unhealthy", fmt.Sprintf("%s probe errored: %s", w.kind.Title(), out))
		return true // the result is thrown away
	case Warning:
		w.m.event(pod, "ProbeWarning", fmt.Sprintf("%s probe warning: %s", w.kind.Title(), out))
		r = Success
	case Failure:
		w.m.event(pod, "Unhealthy", fmt.Sprintf("%s probe failed: %s", w.kind.Title(), out))
	}
	if r == w.last {
		w.streak++
	} else {
		w.last, w.streak = r, 1
	}
	if (r == Failure && w.streak < w.failure) || (r == Success && w.streak < w.success) {
		return true
	}
	w.m.record(w.inst, w.kind, r, out)
	// A failed liveness or startup probe waits for the restart, which
	// comes as a new instance; a startup probe that succeeded is done.
	switch w.kind {
	case Startup:
		return false
	case Liveness:
		return r == Success
	}
	return true
}

// attempt runs the probe, retrying one that could not be run.
func (w *worker) attempt(ctx context.Context, t Target) (Result, string) {
	var (
		r   Result
		out string
	)
	for i := 0; i < maxAttempts && ctx.Err() == nil; i++ {
		if r, out = Run(ctx, w.m.cfg.Runtime, w.probe, t); r != Unknown {
			break
		}
	}
	return r, out
}
