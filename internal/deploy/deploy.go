// Package deploy applies the manifest files of a directory to the cluster
// and keeps them applied, as k3s's deploy controller does: YAML and JSON
// files are applied at start and whenever they change, in lexical order;
// objects are created, or updated by a three-way merge that keeps fields
// the file does not set; every object records the file it came from, so
// removing an object from a file, or the file, deletes it.
package deploy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mizzen-dev/mizzen/internal/apiserver/rest"
	"github.com/mizzen-dev/mizzen/internal/controller"
)

// Config says where the manifests are and what to bundle.
type Config struct {
	// Dir is the manifests directory (DATA/server/manifests).
	Dir string
	// Bundled are the manifests written into Dir on start (see Stage),
	// with Vars substituted; Disable names the bundled ones to leave out.
	Bundled fs.FS
	Vars    map[string]string
	Disable []string
	// Interval is how often Dir is checked for changes (2 s). Resync,
	// when set, is how often every file is applied again, undoing drift;
	// by default, as in k3s, a file is applied at start and when it
	// changes, and users' edits to its objects stay until then.
	Interval time.Duration
	Resync   time.Duration
	// Identity names this server (as in its leader-election leases); it
	// deletes only objects it created or adopted.
	Identity string
	Log      *logrus.Entry
}

// Controller applies the files of a manifests directory.
type Controller struct {
	cfg    Config
	store  *rest.Store
	events *controller.Recorder
	// ready is closed by Run after the first pass over every file.
	ready chan struct{}
	// files is the state of each file by path relative to Dir; only
	// Run's goroutine uses it.
	files map[string]*file
	// settle is how long a changed file must stay unmodified before it
	// is applied, so that a file caught while written (by an editor, cp)
	// is not applied half-written, deleting what its missing part gives.
	settle time.Duration
}

// file is what the controller knows of one manifest file.
type file struct {
	size    int64
	modTime time.Time
	sum     [sha256.Size]byte
	// want holds the objects the file gives; complete is false when
	// part of it did not parse, so what it gave before is kept.
	want     map[Ref]bool
	complete bool
	// failures counts consecutive passes with refused objects; retry is
	// when to apply the file again (zero: only when it changes).
	failures int
	retry    time.Time
	// missing is set when the last pass did not find the file; its
	// objects are deleted when the next one does not either (an editor
	// may replace a file by renaming it away and back).
	missing bool
}

// New returns a controller writing through store (the API server's REST
// store, so objects go through defaulting, validation and admission).
func New(cfg Config, store *rest.Store) *Controller {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	return &Controller{
		cfg: cfg, store: store, ready: make(chan struct{}), files: map[string]*file{}, settle: time.Second,
		events: &controller.Recorder{Client: controller.NewStoreClient(store), Component: "deploy", Log: cfg.Log},
	}
}

// Ready is closed once every file present at start has been applied
// (successfully or not).
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Run stages the bundled manifests, applies every file, then follows
// changes until ctx is done. The cache must be synced and kube-system
// exist before it is called.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.Bundled != nil {
		if err := Stage(c.cfg.Dir, c.cfg.Bundled, c.cfg.Vars, c.cfg.Disable, c.cfg.Log); err != nil {
			return err
		}
	}
	c.sync(ctx, true)
	close(c.ready)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	resync := time.Now().Add(c.cfg.Resync)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			all := c.cfg.Resync > 0 && now.After(resync)
			if all {
				resync = now.Add(c.cfg.Resync)
			}
			c.sync(ctx, all)
		}
	}
}

// sync applies the files that changed (every file when all is set) and
// deletes what removed files and objects left behind.
func (c *Controller) sync(ctx context.Context, all bool) {
	paths, skip, err := scan(c.cfg.Dir)
	if err != nil {
		// Never prune on a directory that cannot be read.
		log := c.cfg.Log.WithError(err)
		if errors.Is(err, fs.ErrNotExist) {
			log.Debug("no manifests directory")
		} else {
			log.Warn("read manifests directory")
		}
		return
	}
	changed := all
	now := time.Now()
	for _, rel := range paths {
		if skip[rel] {
			continue
		}
		if c.syncFile(ctx, rel, all, now) {
			changed = true
		}
	}
	for rel, f := range c.files {
		switch {
		case skip[rel] || (!slices.Contains(paths, rel) && f.missing):
			delete(c.files, rel)
			changed = true
		case !slices.Contains(paths, rel):
			f.missing = true
		}
	}
	if changed {
		c.prune(ctx, skip)
	}
}

// syncFile applies one file when it changed, is due for a retry, or all is
// set; it reports whether it applied it.
func (c *Controller) syncFile(ctx context.Context, rel string, all bool, now time.Time) bool {
	name := filepath.Join(c.cfg.Dir, rel)
	st, err := os.Stat(name)
	if err != nil {
		return false // removed since the scan; the next pass sees it
	}
	f := c.files[rel]
	if f != nil {
		f.missing = false
	}
	due := all || f == nil || (!f.retry.IsZero() && now.After(f.retry))
	if !due && st.Size() == f.size && st.ModTime().Equal(f.modTime) {
		return false
	}
	if age := now.Sub(st.ModTime()); !all && age >= 0 && age < c.settle {
		// Being written, maybe: apply it on a later pass, and keep its
		// objects meanwhile (incomplete, a new file's are not pruned).
		if f == nil {
			c.files[rel] = &file{}
		}
		return false
	}
	data, err := os.ReadFile(name)
	if err != nil {
		c.cfg.Log.WithError(err).WithField("file", rel).Warn("read manifest")
		// Keep what it created, and try again when it changes.
		kept := &file{size: st.Size(), modTime: st.ModTime()}
		if f != nil {
			kept.want = f.want
		}
		c.files[rel] = kept
		return false
	}
	sum := sha256.Sum256(data)
	if !due && sum == f.sum {
		f.size, f.modTime = st.Size(), st.ModTime()
		return false
	}
	next := c.apply(ctx, rel, data)
	next.size, next.modTime, next.sum = st.Size(), st.ModTime(), sum
	if next.failures > 0 && f != nil && f.sum == sum {
		next.failures += f.failures
	}
	if next.failures > 0 {
		backoff := min(10*time.Second<<min(next.failures-1, 10), maxBackoff)
		next.retry = now.Add(backoff)
	}
	c.files[rel] = next
	return true
}

// maxBackoff is the longest wait before a file with refused objects is
// applied again.
const maxBackoff = 5 * time.Minute

// scan lists the manifest files under dir (relative, sorted) and which of
// them are marked with SkipSuffix (present or not).
func scan(dir string) ([]string, map[string]bool, error) {
	var paths []string
	skip := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, SkipSuffix) {
			skip[strings.TrimSuffix(rel, SkipSuffix)] = true
		} else if Manifest(rel) && regular(p, d) {
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(paths)
	return paths, skip, nil
}

// regular reports whether a directory entry is a file, or a symbolic link
// to one.
func regular(p string, d fs.DirEntry) bool {
	if d.Type()&fs.ModeSymlink != 0 {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	}
	return d.Type().IsRegular()
}

// apply applies every object of a file in order; an object that cannot be
// applied is reported and the rest still are.
func (c *Controller) apply(ctx context.Context, rel string, data []byte) *file {
	log := c.cfg.Log.WithField("file", rel)
	objs, errs := Parse(rel, data)
	f := &file{want: map[Ref]bool{}, complete: len(errs) == 0}
	for _, err := range errs {
		c.fail(ctx, rel, fmt.Errorf("parse: %w", err))
	}
	written := 0
	for _, o := range objs {
		ref, wrote, err := c.applyObject(ctx, rel, o)
		f.want[ref] = true
		if err != nil {
			f.failures = 1
			c.fail(ctx, rel, fmt.Errorf("%s (document %d): %w", ref, o.Doc, err))
			continue
		}
		if wrote {
			written++
			log.WithField("object", ref.String()).Debug("applied")
		}
	}
	if written > 0 {
		log.WithField("objects", written).Info("applied manifest")
		c.event(ctx, rel, corev1.EventTypeNormal, "AppliedManifest", "Applied manifest at %q", rel)
	}
	return f
}

// fail reports an error of a file in the log and as a Warning event.
func (c *Controller) fail(ctx context.Context, rel string, err error) {
	c.cfg.Log.WithField("file", rel).Warnf("manifest: %v", err)
	c.event(ctx, rel, corev1.EventTypeWarning, "ApplyManifestFailed", "Applying manifest at %q failed: %v", rel, err)
}

var notName = regexp.MustCompile(`[^a-z0-9.-]+`)

// event records an event about a file. Events name it as k3s's do: an
// Addon in kube-system named for the file without extension.
func (c *Controller) event(ctx context.Context, rel, typ, reason, format string, args ...interface{}) {
	name := strings.Trim(notName.ReplaceAllString(strings.ToLower(strings.TrimSuffix(rel, filepath.Ext(rel))), "-"), "-.")
	if name == "" {
		name = "manifest"
	}
	addon := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "deploy.mizzen.io/v1", Kind: "Addon"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem},
	}
	c.events.Eventf(ctx, addon, typ, reason, format, args...)
}

// errNoKind is the error for an object of a kind not served, worded as
// kubectl words it.
func errNoKind(o Object) error {
	gvk := o.GVK()
	return fmt.Errorf("no matches for kind %q in version %q", gvk.Kind, gvk.GroupVersion().String())
}
