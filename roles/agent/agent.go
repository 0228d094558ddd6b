package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/mizzen-dev/mizzen/internal/apiclient"
	"github.com/mizzen-dev/mizzen/internal/controller"
	"github.com/mizzen-dev/mizzen/internal/group"
	"github.com/mizzen-dev/mizzen/internal/join"
	"github.com/mizzen-dev/mizzen/internal/kubelet"
	"github.com/mizzen-dev/mizzen/internal/kubelet/nodestatus"
	kserver "github.com/mizzen-dev/mizzen/internal/kubelet/server"
	"github.com/mizzen-dev/mizzen/internal/kubelet/volume"
	rt "github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
	"github.com/mizzen-dev/mizzen/internal/version"
)

// Run runs the agent role until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	start := time.Now()
	dir := filepath.Join(cfg.DataDir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if len(cfg.NodeIPs) == 0 {
		cfg.NodeIPs = []netip.Addr{DefaultAddress()}
	}
	hostIP := cfg.NodeIPs[0].String()

	// Listen first, so a taken port fails before anything starts.
	kln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.KubeletPort)))
	if err != nil {
		return fmt.Errorf("kubelet port: %w", err)
	}
	defer kln.Close()
	var roln net.Listener
	if cfg.ReadOnlyPort != 0 {
		addr := net.JoinHostPort(cfg.ReadOnlyAddress.String(), strconv.Itoa(cfg.ReadOnlyPort))
		if roln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("read-only port: %w", err)
		}
		defer roln.Close()
	}

	creds := cfg.Credentials
	if creds == nil {
		var ips []net.IP
		for _, a := range cfg.NodeIPs {
			ips = append(ips, net.IP(a.AsSlice()))
		}
		var c *join.Credentials
		for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
			c, err = join.Join(ctx, join.Config{
				Server: cfg.Server, Token: cfg.Token, NodeName: cfg.NodeName, Dir: filepath.Join(dir, "tls"),
				// The API server reaches the kubelet by InternalIP or the
				// node name; the host name may be the server's, which the
				// server refuses in a node's certificate.
				ServingIPs: ips, ServingDNSNames: []string{cfg.NodeName, "localhost"},
				Log: log.WithField("component", "join"),
			})
			if ctx.Err() != nil {
				return nil // stopped while joining: no warning
			}
			// A server not (yet) reachable is waited for; a refusal, or a
			// server whose certificate the token's CA did not sign, ends
			// the agent.
			var unreachable *url.Error
			var untrusted *tls.CertificateVerificationError
			if err == nil || !errors.As(err, &unreachable) || errors.As(err, &untrusted) {
				break
			}
			log.WithError(err).Warnf("server not reachable, retrying in %s", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
		if err != nil {
			return err
		}
		creds = &Credentials{Client: c.ClientTLS(), Serving: c.ServingTLS()}
	}
	client, err := apiclient.New(apiclient.Config{
		Server: cfg.Server, TLS: creds.Client,
		UserAgent: fmt.Sprintf("mizzen-agent/%s (node %s)", version.Version, cfg.NodeName),
	})
	if err != nil {
		return err
	}

	dockerRT, err := docker.New(docker.Config{Host: cfg.DockerHost})
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer dockerRT.Close()
	var containers rt.Runtime = dockerRT

	recorder := &controller.Recorder{Client: client, Component: "kubelet", Host: cfg.NodeName, Log: log.WithField("component", "events"), Kinds: kindOf}
	event := func(obj runtime.Object, eventType, reason, message string) {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		recorder.Eventf(ectx, obj, eventType, reason, "%s", message)
	}

	cluster, err := fetchCluster(ctx, cfg.Cluster, client, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	volumes := volume.NewManager(filepath.Join(dir, "pods"), kubelet.Sources(client), log.WithField("component", "volumes"),
		volume.WithClusterDomain(cluster.domain))

	nw := &netDeps{
		cfg: cfg, dir: dir, cluster: cluster, client: client, podNet: &podNet{}, dnsSource: newCacheSource(),
		ready: make(chan struct{}), nodesKick: make(chan struct{}, 1),
		log: log,
	}
	var status *nodestatus.Agent
	nw.nodes = apiclient.NewInformer[*corev1.Node](client, "", metav1.ListOptions{}, nw.nodeChanged, log.WithField("component", "nodes"))
	nw.services = apiclient.NewInformer[*corev1.Service](client, "", metav1.ListOptions{},
		nw.serviceChanged, log.WithField("component", "services"))
	nw.dnsSource.services = nw.services
	nw.slices = apiclient.NewInformer[*discoveryv1.EndpointSlice](client, "", metav1.ListOptions{},
		nw.sliceChanged, log.WithField("component", "endpointslices"))
	services := nw.services

	status, err = nodestatus.New(nodestatus.Config{
		NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, Labels: cfg.Labels, Taints: cfg.Taints,
		ControlPlane: cfg.ControlPlane, KubeletPort: cfg.KubeletPort, MaxPods: 110, DataDir: dir,
		Version: version.Kubernetes, Runtime: containers, Client: client,
		NetworkReady: nw.readyErr,
		Event: func(n *corev1.Node, eventType, reason, message string) {
			event(n, eventType, reason, message)
		},
		Log: log.WithField("component", "node-status"),
	})
	if err != nil {
		return err
	}

	var podInformer *apiclient.Informer[*corev1.Pod]
	metrics := kserver.NewMetrics()
	kl := kubelet.New(kubelet.Config{
		NodeName: cfg.NodeName, Runtime: containers, Client: client,
		Pods:       func() []*corev1.Pod { return podInformer.List() },
		PodsSynced: func() bool { return podInformer.HasSynced() },
		Services:   services.List,
		Allocatable: func() corev1.ResourceList {
			if n := status.Node(); n != nil {
				return n.Status.Allocatable
			}
			return nil
		},
		HostIP: hostIP, Volumes: volumes, PodNetwork: nw.podNet,
		ClusterDNS: []string{cluster.clusterDNS.String()}, ClusterDomain: cluster.domain,
		HostDNS:    kubelet.HostResolvConf(),
		Event:      event,
		PodStarted: metrics.ObservePodStart,
		Log:        log.WithField("component", "kubelet"),
	})
	podInformer = apiclient.NewInformer[*corev1.Pod](client, "",
		metav1.ListOptions{FieldSelector: "spec.nodeName=" + cfg.NodeName}, kl.HandlePod, log.WithField("component", "pods"))

	api := kserver.Config{
		Runtime: containers, Pods: podInformer.List,
		Container: kl.ContainerID,
		Node:      status.Node,
		NodeName:  cfg.NodeName,
		Metrics:   metrics,
		Log:       log.WithField("component", "kubelet-api"),
	}

	g, gctx := group.New(ctx)
	run := g.Go
	run("node-status", status.Run)
	run("pod-informer", podInformer.Run)
	run("service-informer", services.Run)
	run("endpointslice-informer", nw.slices.Run)
	run("node-informer", nw.nodes.Run)
	run("network", func(ctx context.Context) error {
		nw.onReady = status.Kick
		return nw.run(ctx)
	})
	run("kubelet", func(ctx context.Context) error {
		sandbox, err := prepareRuntime(ctx, containers, cfg, dir, log)
		if err != nil {
			return err
		}
		if sandbox == "" {
			return nil // stopped while waiting for the runtime
		}
		kl.SetSandboxImage(sandbox)
		status.Kick()
		select {
		case <-nw.ready:
		case <-ctx.Done():
			return nil
		}
		return kl.Run(ctx)
	})
	run("kubelet-api", group.Serve(&http.Server{Handler: kserver.Handler(api), TLSConfig: creds.Serving, ReadHeaderTimeout: 30 * time.Second}, tls.NewListener(kln, creds.Serving)))
	if roln != nil {
		run("read-only-port", group.Serve(&http.Server{Handler: kserver.ReadOnlyHandler(api), ReadHeaderTimeout: 30 * time.Second}, roln))
	}
	go func() {
		select {
		case <-status.Registered():
			log.WithFields(map[string]any{"node": cfg.NodeName, "elapsed": time.Since(start).Round(time.Millisecond)}).Info("mizzen agent ready")
		case <-gctx.Done():
		}
	}()
	return g.Wait()
}

// prepareRuntime waits for the runtime, imports the sandbox image and
// loads airgap images; it returns the sandbox image (empty when ctx
// ended first).
func prepareRuntime(ctx context.Context, r rt.Runtime, cfg Config, dir string, log interface {
	Warnf(string, ...any)
	Infof(string, ...any)
}) (string, error) {
	delay := time.Second
	for {
		v, err := r.Version(ctx)
		if err == nil {
			sandbox, err := kubelet.EnsureSandboxImage(ctx, r, cfg.Binary)
			if err != nil {
				return "", err
			}
			loaded, err := kubelet.LoadImages(ctx, r, filepath.Join(dir, "images"))
			if err != nil {
				log.Warnf("airgap images: %v", err)
			}
			for file, refs := range loaded {
				log.Infof("loaded images %v from %s", refs, file)
			}
			log.Infof("container runtime %s ready", v)
			return sandbox, nil
		}
		log.Warnf("container runtime not reachable (retrying in %s): %v", delay, err)
		select {
		case <-ctx.Done():
			return "", nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// kindOf names the apiVersion and kind of the objects the kubelet
// records events about.
func kindOf(obj runtime.Object) (string, string) {
	switch obj.(type) {
	case *corev1.Pod:
		return "v1", "Pod"
	case *corev1.Node:
		return "v1", "Node"
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return gvk.GroupVersion().String(), gvk.Kind
}

// DefaultAddress returns the address of the interface holding the
// default route (found without sending anything), or 127.0.0.1.
func DefaultAddress() netip.Addr {
	conn, err := net.Dial("udp4", "192.0.2.1:9")
	if err == nil {
		defer conn.Close()
		if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
				return ip
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
