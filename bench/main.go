// Command bench measures a mizzen server against the figures in
// DESIGN.md: cold start to /readyz, idle memory, create throughput beside
// raw etcd, LIST latency and watch fan-out. It prints one line per figure
// and asserts nothing. scripts/bench builds the binary and runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/mizzen-dev/mizzen/internal/storage"
)

// config is what the command line sets.
type config struct {
	binary   string
	starts   int
	idle     time.Duration
	creates  int
	duration time.Duration
	clients  int
	listN    int
	listRuns int
	watchers int
	rounds   int
}

func main() {
	var c config
	idle := 60 * time.Second
	if v := os.Getenv("BENCH_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: BENCH_IDLE:", err)
			os.Exit(2)
		}
		idle = d
	}
	flag.StringVar(&c.binary, "binary", "", "the mizzen binary to measure (required)")
	flag.IntVar(&c.starts, "starts", 10, "cold starts to time")
	flag.DurationVar(&c.idle, "idle", idle, "how long the server idles before its memory is read (env BENCH_IDLE)")
	flag.IntVar(&c.creates, "creates", 20000, "creates per throughput run (at most)")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of a throughput run (at most)")
	flag.IntVar(&c.clients, "clients", 8, "parallel clients of the throughput runs")
	flag.IntVar(&c.listN, "list", 10000, "ConfigMaps listed")
	flag.IntVar(&c.listRuns, "list-runs", 10, "timed lists per media type")
	flag.IntVar(&c.watchers, "watchers", 500, "concurrent watchers")
	flag.IntVar(&c.rounds, "rounds", 5, "watch fan-out rounds")
	flag.Parse()
	if c.binary == "" {
		fmt.Fprintln(os.Stderr, "bench: -binary is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run runs every figure; whatever happens, it stops the servers it
// started and removes their directories before returning.
func run(ctx context.Context, c config) error {
	root, err := os.MkdirTemp("", "mizzen-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	f := newFleet(c.binary, root)
	defer f.stopAll()

	fmt.Printf("machine: nproc %d, %s, %s/%s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH)

	// The long-lived server idles first; the cold starts run meanwhile
	// (other processes do not change its memory or CPU figures).
	s, err := f.start()
	if err != nil {
		return err
	}
	if _, err := s.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	coldCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	coldDone := make(chan error, 1)
	go func() { coldDone <- coldStarts(coldCtx, f, c.starts) }()
	idleErr := idleFigures(ctx, s, c.idle)
	if idleErr != nil {
		cancel()
		idleErr = fmt.Errorf("idle server: %w%s", idleErr, s.diagnosis())
	}
	if err := errors.Join(idleErr, <-coldDone); err != nil {
		return err
	}
	if err := s.waitKubeconfig(10 * time.Second); err != nil {
		return err
	}
	if err := loadFigures(ctx, c, s, root); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w%s", err, s.diagnosis())
	}
	if rss, err := s.procStatus("VmRSS"); err == nil {
		hwm, _ := s.procStatus("VmHWM")
		fmt.Printf("server RSS after the load figures: %s (peak %s)\n", mib(rss), mib(hwm))
	}
	d, err := f.stop(s)
	if err != nil {
		return err
	}
	fmt.Printf("stop of the loaded server (SIGTERM → exit): %s\n", ms(d))
	return podFigures(ctx, f, 50, 1000)
}

// coldStarts times process start → /readyz ok on fresh data directories.
func coldStarts(ctx context.Context, f *fleet, n int) error {
	var ready, stops []time.Duration
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := f.start()
		if err != nil {
			return err
		}
		d, err := s.waitReady(ctx, 30*time.Second)
		if err != nil {
			_, _ = f.stop(s)
			return err
		}
		ready = append(ready, d)
		sd, err := f.stop(s)
		if err != nil {
			return err
		}
		stops = append(stops, sd)
	}
	fmt.Printf("start → /readyz ok (fresh data dir): %s [goal ≤ 300 ms]\n", summarize(ready))
	fmt.Printf("stop (SIGTERM → exit): %s\n", summarize(stops))
	return nil
}

// idleFigures reads the idle server's memory 10 s and idle after its
// start, and its CPU and disk writes in between.
func idleFigures(ctx context.Context, s *server, idle time.Duration) error {
	first := min(10*time.Second, idle)
	if err := sleepUntil(ctx, s.started.Add(first)); err != nil {
		return err
	}
	rss10, err := s.procStatus("VmRSS")
	if err != nil {
		return err
	}
	u0, err := s.usage()
	if err != nil {
		return err
	}
	rev0, err := etcdRevision(ctx, s.etcdEndpoint())
	if err != nil {
		return err
	}
	fmt.Printf("idle RSS after %v: %s\n", first, mib(rss10))
	if idle <= first {
		return nil
	}
	if err := sleepUntil(ctx, s.started.Add(idle)); err != nil {
		return err
	}
	rss, err := s.procStatus("VmRSS")
	if err != nil {
		return err
	}
	u1, err := s.usage()
	if err != nil {
		return err
	}
	rev1, err := etcdRevision(ctx, s.etcdEndpoint())
	if err != nil {
		return err
	}
	span := u1.at.Sub(u0.at).Seconds()
	fmt.Printf("idle RSS after %v: %s [goal ≤ 80 MB]\n", idle, mib(rss))
	fmt.Printf("idle CPU %v–%v: %.2f %% of one core\n", first, idle, 100*(u1.cpu-u0.cpu).Seconds()/span)
	// Every etcd revision is a WAL append and an fsync.
	fmt.Printf("idle writes %v–%v: %.2f etcd revisions/s, %.1f KB/s to the block layer\n", first, idle,
		float64(rev1-rev0)/span, float64(u1.writeBytes-u0.writeBytes)/1e3/span)
	return nil
}

// loadFigures measures LIST latency, create throughput beside raw etcd and
// watch fan-out on the running server s.
func loadFigures(ctx context.Context, c config, s *server, root string) error {
	cfg, err := restConfig(s.kubeconfig)
	if err != nil {
		return err
	}
	cs, err := newClient(cfg, false)
	if err != nil {
		return err
	}
	for _, ns := range []string{"bench-list", "bench-create", "bench-watch"} {
		if err := createNamespace(ctx, cs, ns); err != nil {
			return err
		}
	}
	// LIST first, while the 10,000 are (nearly) all the ConfigMaps there are.
	if err := listFigures(ctx, c, s, cfg, cs, root); err != nil {
		return err
	}
	if err := createFigures(ctx, c, s, cfg); err != nil {
		return err
	}
	fan, err := watchFanout(ctx, cs, "bench-watch", c.watchers, c.rounds)
	if err != nil {
		return err
	}
	fmt.Printf("watch fan-out, %d client-go watchers opened in %s; update response → last watcher: %s\n", c.watchers, ms(fan.setup), fan.afterResponse)
	fmt.Printf("watch fan-out, %d watchers; update request sent → last watcher: %s\n", c.watchers, fan.afterRequest)
	return nil
}

// listFigures creates c.listN ConfigMaps and times full lists of them.
func listFigures(ctx context.Context, c config, s *server, cfg *rest.Config, cs *kubernetes.Clientset, root string) error {
	fill, err := apiCreates(ctx, cfg, "bench-list", 16, c.listN, time.Hour, 256)
	if err != nil {
		return err
	}
	if fill.errs > 0 {
		return fmt.Errorf("creating the ConfigMaps to list: %v", fill)
	}
	fmt.Printf("filled %d ConfigMaps (256 B data) from 16 clients: %.0f/s\n", fill.ops, fill.rate())
	tl, items, err := typedList(ctx, cs, c.listRuns)
	if err != nil {
		return err
	}
	for _, mt := range []string{"application/json", mediaProtobuf, "application/json;as=Table;v=v1;g=meta.k8s.io"} {
		t, size, err := rawList(ctx, cs, mt, c.listRuns)
		if err != nil {
			return err
		}
		fmt.Printf("LIST %d ConfigMaps, %s (%.1f MB, body read, not decoded): %s\n", items, mt, float64(size)/1e6, t)
	}
	fmt.Printf("LIST %d ConfigMaps, client-go typed (protobuf, decoded): %s\n", items, tl)
	pt, pages, err := pagedList(ctx, cs, 500, c.listRuns)
	if err != nil {
		return err
	}
	fmt.Printf("LIST %d ConfigMaps in pages of 500 (%d pages, client-go typed): %s\n", items, pages, pt)
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		fmt.Println("kubectl get cm -A: skipped, no kubectl in PATH")
		return nil
	}
	t, err := kubectlGet(ctx, kubectl, s.kubeconfig, root, 3)
	if err != nil {
		return err
	}
	fmt.Printf("kubectl get cm -A (%d ConfigMaps, tables, chunks of 500): %s\n", items, t)
	return nil
}

// createFigures measures creates/s of raw etcd transactions, then of
// ConfigMaps through the API, of about the same stored size.
func createFigures(ctx context.Context, c config, s *server, cfg *rest.Config) error {
	raw, err := etcdCreates(ctx, s.etcdEndpoint(), "/bench/raw/", c.clients, c.creates, c.duration, 1536)
	if err != nil {
		return err
	}
	fmt.Printf("raw etcd creates (%d clients, Txn create-if-absent, 1.5 KB values): %v [floor]\n", c.clients, raw)
	// 1.28 KB of data is stored as a ~1.5 KB ConfigMap.
	api, err := apiCreates(ctx, cfg, "bench-create", c.clients, c.creates, c.duration, 1280)
	if err != nil {
		return err
	}
	stored, err := storedSize(ctx, s.etcdEndpoint(), storage.Key("", "configmaps", "bench-create", "cm-000000"))
	if err != nil {
		return err
	}
	fmt.Printf("API creates of ConfigMaps (%d clients, protobuf, %.2f KB stored): %v [target ≥ 2100/s; %.0f %% of raw etcd]\n",
		c.clients, float64(stored)/1e3, api, 100*api.rate()/raw.rate())
	return nil
}

// sleepUntil waits until t or until ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-time.After(time.Until(t)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cpuModel is the first model name in /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, val, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown CPU"
}

// mib formats a byte count in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
