package server

import (
	"github.com/go-chi/chi/v5"

	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// apiMounts returns the discovery and OpenAPI routes.
func apiMounts(reg *registry.Registry) ([]func(chi.Router), error) {
	d := discovery.New(reg)
	return []func(chi.Router){d.Mount}, nil
}
