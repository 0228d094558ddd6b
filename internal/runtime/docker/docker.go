// Package docker implements runtime.Runtime over the Docker Remote API.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/mizzen-dev/mizzen/internal/runtime"
)

// Config says how to reach the Docker daemon.
type Config struct {
	// Host is the daemon's address, e.g. unix:///var/run/docker.sock;
	// empty means DOCKER_HOST or the default socket.
	Host string
}

// Runtime is a runtime.Runtime backed by a Docker daemon.
type Runtime struct {
	c *client.Client
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime for the daemon cfg names. The API version is
// negotiated with the daemon on the first request.
func New(cfg Config) (*Runtime, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Runtime{c: c}, nil
}

// Close releases the client's connections.
func (r *Runtime) Close() error { return r.c.Close() }

// Version implements runtime.Runtime.
func (r *Runtime) Version(ctx context.Context) (runtime.VersionInfo, error) {
	v, err := r.c.ServerVersion(ctx)
	if err != nil {
		return runtime.VersionInfo{}, fmt.Errorf("docker version: %w", err)
	}
	// Distribution builds append "+dfsg1" and the like: drop it.
	ver, _, _ := strings.Cut(v.Version, "+")
	return runtime.VersionInfo{Name: "docker", Version: ver, APIVersion: v.APIVersion}, nil
}

// ImageStatus implements runtime.Runtime.
func (r *Runtime) ImageStatus(ctx context.Context, ref string) (runtime.Image, error) {
	ii, err := r.c.ImageInspect(ctx, ref)
	if err != nil {
		return runtime.Image{}, wrap(err, "inspect image "+ref)
	}
	return runtime.Image{ID: ii.ID, Tags: ii.RepoTags, Size: ii.Size}, nil
}

// PullImage implements runtime.Runtime.
func (r *Runtime) PullImage(ctx context.Context, ref string, auth *runtime.RegistryAuth, progress func(runtime.PullProgress)) (runtime.Image, error) {
	var opts image.PullOptions
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
			Username: auth.Username, Password: auth.Password, Auth: auth.Auth,
			ServerAddress: auth.ServerAddress, IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken,
		})
		if err != nil {
			return runtime.Image{}, err
		}
		opts.RegistryAuth = enc
	}
	body, err := r.c.ImagePull(ctx, ref, opts)
	if err != nil {
		return runtime.Image{}, wrap(err, "pull "+ref)
	}
	defer body.Close()
	err = decodeMessages(body, func(m jsonmessage.JSONMessage) {
		if progress == nil {
			return
		}
		p := runtime.PullProgress{Layer: m.ID, Status: m.Status}
		if m.Progress != nil {
			p.Current, p.Total = m.Progress.Current, m.Progress.Total
		}
		progress(p)
	})
	if err != nil {
		return runtime.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	return r.ImageStatus(ctx, ref)
}

// LoadImages implements runtime.Runtime.
func (r *Runtime) LoadImages(ctx context.Context, archive io.Reader) ([]string, error) {
	resp, err := r.c.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, wrap(err, "load images")
	}
	defer resp.Body.Close()
	var names []string
	err = decodeMessages(resp.Body, func(m jsonmessage.JSONMessage) {
		for _, line := range strings.Split(m.Stream, "\n") {
			if name, ok := strings.CutPrefix(line, "Loaded image: "); ok {
				names = append(names, strings.TrimSpace(name))
			} else if id, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
				names = append(names, strings.TrimSpace(id))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	return names, nil
}

// ImportImage implements runtime.Runtime.
func (r *Runtime) ImportImage(ctx context.Context, rootfs io.Reader, ref string, cfg runtime.ImageConfig) (runtime.Image, error) {
	var changes []string
	if len(cfg.Entrypoint) > 0 {
		changes = append(changes, "ENTRYPOINT "+jsonArray(cfg.Entrypoint))
	}
	if len(cfg.Cmd) > 0 {
		changes = append(changes, "CMD "+jsonArray(cfg.Cmd))
	}
	for _, e := range cfg.Env {
		k, v, _ := strings.Cut(e, "=")
		changes = append(changes, "ENV "+k+"="+jsonString(v))
	}
	if cfg.WorkingDir != "" {
		changes = append(changes, "WORKDIR "+cfg.WorkingDir)
	}
	body, err := r.c.ImageImport(ctx, image.ImportSource{Source: rootfs, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		return runtime.Image{}, wrap(err, "import "+ref)
	}
	defer body.Close()
	if err := decodeMessages(body, func(jsonmessage.JSONMessage) {}); err != nil {
		return runtime.Image{}, fmt.Errorf("import %s: %w", ref, err)
	}
	return r.ImageStatus(ctx, ref)
}

// RemoveImage implements runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	_, err := r.c.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return wrap(err, "remove image "+ref)
	}
	return nil
}

// decodeMessages reads a stream of JSON messages, calling fn for each, and
// returns the first error message the daemon sent.
func decodeMessages(r io.Reader, fn func(jsonmessage.JSONMessage)) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return m.Error
		}
		fn(m)
	}
}

// wrap adds what failed to err, and runtime.ErrNotFound when Docker says
// the object does not exist.
func wrap(err error, what string) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w (%v)", what, runtime.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func jsonArray(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
