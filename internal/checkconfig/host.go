package checkconfig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/google/nftables"

	"github.com/mizzen-dev/mizzen/internal/runtime/docker"
)

// Host is what the checks learn of the machine. System is the real one.
type Host interface {
	// ReadFile reads a file by its absolute path (/proc/modules).
	ReadFile(name string) ([]byte, error)
	// Exists says whether a file or directory exists (/sys/module/veth).
	Exists(name string) bool
	// EUID is the effective user id of this process.
	EUID() int
	// PortFree returns an error when a TCP port cannot be bound on all
	// addresses.
	PortFree(port int) error
	// Docker returns the version of the Docker daemon at host (empty:
	// DOCKER_HOST or the default socket).
	Docker(ctx context.Context, host string) (DockerVersion, error)
	// NFTables returns an error when the kernel does not answer an
	// nftables netlink query (a harmless list of tables).
	NFTables() error
}

// DockerVersion is what the Docker daemon says of itself.
type DockerVersion struct {
	Version    string
	APIVersion string
}

// System is the Host this process runs on.
type System struct{}

var _ Host = System{}

// ReadFile implements Host.
func (System) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Exists implements Host.
func (System) Exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// EUID implements Host.
func (System) EUID() int { return os.Geteuid() }

// PortFree implements Host.
func (System) PortFree(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			return se.Err
		}
		return err
	}
	return l.Close()
}

// Docker implements Host.
func (System) Docker(ctx context.Context, host string) (DockerVersion, error) {
	rt, err := docker.New(docker.Config{Host: host})
	if err != nil {
		return DockerVersion{}, err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := rt.Version(ctx)
	if err != nil {
		return DockerVersion{}, err
	}
	return DockerVersion{Version: v.Version, APIVersion: v.APIVersion}, nil
}

// NFTables implements Host.
func (System) NFTables() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables netlink: %w", err)
	}
	if _, err := c.ListTables(); err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	return nil
}
