package main

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podFigures measures the controllers and the scheduler on a fresh
// server: a Deployment of replicas pods onto nodes fake Ready nodes
// (time to all bound, spread), then the server's idle CPU and memory
// with those pods in its cache.
func podFigures(ctx context.Context, f *fleet, nodes, replicas int) error {
	s, err := f.start()
	if err != nil {
		return err
	}
	defer f.stop(s)
	if _, err := s.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	if err := s.waitKubeconfig(10 * time.Second); err != nil {
		return err
	}
	cfg, err := restConfig(s.kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for i := 0; i < nodes; i++ {
		if err := fakeNode(ctx, cs, fmt.Sprintf("node-%03d", i)); err != nil {
			return err
		}
	}
	n := int32(replicas)
	labels := map[string]string{"app": "bench"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}}},
		},
	}
	start := time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	var perNode map[string]int
	for {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bench", ResourceVersion: "0"})
		if err != nil {
			return err
		}
		perNode = map[string]int{}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				bound++
				perNode[p.Spec.NodeName]++
			}
		}
		if bound == replicas {
			break
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("only %d of %d pods bound after 2 minutes", bound, replicas)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	lo, hi := replicas, 0
	for i := 0; i < nodes; i++ {
		c := perNode[fmt.Sprintf("node-%03d", i)]
		lo, hi = min(lo, c), max(hi, c)
	}
	fmt.Printf("Deployment of %d replicas onto %d nodes, create → all pods bound: %s (%.0f pods/s), pods per node min %d max %d\n",
		replicas, nodes, ms(took), float64(replicas)/took.Seconds(), lo, hi)
	// Let the controllers settle, then idle with the pods cached.
	time.Sleep(5 * time.Second)
	u0, err := s.usage()
	if err != nil {
		return err
	}
	time.Sleep(10 * time.Second)
	u1, err := s.usage()
	if err != nil {
		return err
	}
	rss, err := s.procStatus("VmRSS")
	if err != nil {
		return err
	}
	fmt.Printf("idle with %d pods and %d nodes cached: RSS %s, CPU %.2f %% of one core (10 s)\n",
		replicas, nodes, mib(rss), 100*(u1.cpu-u0.cpu).Seconds()/u1.at.Sub(u0.at).Seconds())
	return nil
}

// fakeNode creates a Node that reports Ready with room for many pods.
func fakeNode(ctx context.Context, cs *kubernetes.Clientset, name string) error {
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"kubernetes.io/hostname": name}}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	room := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")}
	// Node IPAM writes the new node at once: retry on its conflicts.
	for attempt := 0; ; attempt++ {
		n.Status.Capacity, n.Status.Allocatable = room, room
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || attempt == 10 {
			return err
		}
		if n, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
}
