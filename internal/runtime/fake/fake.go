// Package fake is an in-memory runtime.Runtime for unit tests of the
// kubelet. It records every call, can fail the next call of a method, and
// runs containers' commands with a tiny interpreter (see shell.go) so that
// exits, logs, exec and stop timeouts behave as they do under Docker.
// Images have no content: a container runs its spec's command, else the
// entrypoint and cmd an imported image was given, else `sleep inf`.
// Tests script crashes with Exit and exec results with ExecHook.
package fake

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Call is one recorded call of a Runtime method.
type Call struct {
	Method string
	Arg    string // the container ID or image ref the call was about
}

// Runtime is the fake. The zero value is not usable; call New.
type Runtime struct {
	// ExecHook, when set, is asked first about every Exec; when it
	// returns handled, its code is the result and nothing runs.
	ExecHook func(id string, opts runtime.ExecOptions) (code int, handled bool)

	mu         sync.Mutex // guards the fields below and every container
	info       runtime.VersionInfo
	images     map[string]*runtime.Image      // by tag and by ID
	configs    map[string]runtime.ImageConfig // by image ID, for imports
	registry   map[string]bool                // refs PullImage can fetch
	containers map[string]*container
	names      map[string]string // container name -> ID
	calls      []Call
	failNext   map[string]error
	seq        int
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns an empty fake runtime that reports itself as docker 20.10.24.
func New() *Runtime {
	return &Runtime{
		info:       runtime.VersionInfo{Name: "docker", Version: "20.10.24", APIVersion: "1.41"},
		images:     map[string]*runtime.Image{},
		configs:    map[string]runtime.ImageConfig{},
		registry:   map[string]bool{},
		containers: map[string]*container{},
		names:      map[string]string{},
		failNext:   map[string]error{},
	}
}

// Calls returns the calls made so far, in order.
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// FailNext makes the next call of method (e.g. "PullImage") return err.
func (r *Runtime) FailNext(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[method] = err
}

// AddRegistryImage makes ref pullable.
func (r *Runtime) AddRegistryImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registry[normalize(ref)] = true
}

// record notes a call and returns the error FailNext scripted for it.
// r.mu must be held.
func (r *Runtime) record(method, arg string) error {
	r.calls = append(r.calls, Call{Method: method, Arg: arg})
	if err, ok := r.failNext[method]; ok {
		delete(r.failNext, method)
		return err
	}
	return nil
}

// Version implements runtime.Runtime.
func (r *Runtime) Version(ctx context.Context) (runtime.VersionInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info, r.record("Version", "")
}

// ImageStatus implements runtime.Runtime.
func (r *Runtime) ImageStatus(ctx context.Context, ref string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("ImageStatus", ref); err != nil {
		return runtime.Image{}, err
	}
	return r.image(ref)
}

// image looks ref up by tag or ID. r.mu must be held.
func (r *Runtime) image(ref string) (runtime.Image, error) {
	img, ok := r.images[normalize(ref)]
	if !ok {
		img, ok = r.images[ref]
	}
	if !ok {
		return runtime.Image{}, fmt.Errorf("image %s: %w", ref, runtime.ErrNotFound)
	}
	return *img, nil
}

// PullImage implements runtime.Runtime.
func (r *Runtime) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("PullImage", ref); err != nil {
		return runtime.Image{}, err
	}
	if !r.registry[normalize(ref)] {
		return runtime.Image{}, fmt.Errorf("pull %s: repository does not exist: %w", ref, runtime.ErrNotFound)
	}
	if progress != nil {
		progress(runtime.PullProgress{Layer: "0123456789ab", Status: "Downloading", Current: 512, Total: 1024})
		progress(runtime.PullProgress{Layer: "0123456789ab", Status: "Pull complete"})
	}
	return r.addImage(ref, []byte(ref)), nil
}

// addImage stores an image with content-derived ID. r.mu must be held.
func (r *Runtime) addImage(ref string, content []byte) runtime.Image {
	tag := normalize(ref)
	id := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
	img, ok := r.images[id]
	if !ok {
		img = &runtime.Image{ID: id, Size: int64(len(content))}
		r.images[id] = img
	}
	if old, ok := r.images[tag]; ok && old != img {
		old.Tags = remove(old.Tags, tag)
	}
	if !contains(img.Tags, tag) {
		img.Tags = append(img.Tags, tag)
	}
	r.images[tag] = img
	return *img
}

// LoadImages implements runtime.Runtime. It reads the RepoTags of the
// archive's manifest.json.
func (r *Runtime) LoadImages(ctx context.Context, archive io.Reader) ([]string, error) {
	var manifest []struct {
		Config   string
		RepoTags []string
	}
	tr := tar.NewReader(archive)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("load images: %w", err)
		}
		if path.Clean(h.Name) == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				return nil, fmt.Errorf("load images: manifest.json: %w", err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("LoadImages", ""); err != nil {
		return nil, err
	}
	if manifest == nil {
		return nil, errors.New("load images: no manifest.json in the archive")
	}
	var names []string
	for _, m := range manifest {
		for _, t := range m.RepoTags {
			r.addImage(t, []byte(m.Config))
			names = append(names, t)
		}
	}
	return names, nil
}

// ImportImage implements runtime.Runtime.
func (r *Runtime) ImportImage(ctx context.Context, rootfs io.Reader, ref string, cfg runtime.ImageConfig) (runtime.Image, error) {
	h := sha256.New()
	if _, err := io.Copy(h, rootfs); err != nil {
		return runtime.Image{}, fmt.Errorf("import %s: %w", ref, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("ImportImage", ref); err != nil {
		return runtime.Image{}, err
	}
	img := r.addImage(ref, h.Sum(nil))
	r.configs[img.ID] = cfg
	return img, nil
}

// RemoveImage implements runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.record("RemoveImage", ref); err != nil {
		return err
	}
	img, err := r.image(ref)
	if err != nil {
		return nil
	}
	p := r.images[img.ID]
	if tag := normalize(ref); contains(p.Tags, tag) && len(p.Tags) > 1 {
		p.Tags = remove(p.Tags, tag)
		delete(r.images, tag)
		return nil
	}
	for _, t := range p.Tags {
		delete(r.images, t)
	}
	delete(r.images, img.ID)
	delete(r.configs, img.ID)
	return nil
}

// normalize gives ref a tag, as Docker does.
func normalize(ref string) string {
	if strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@") {
		return ref
	}
	if !strings.Contains(path.Base(ref), ":") {
		return ref + ":latest"
	}
	return ref
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func remove(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
