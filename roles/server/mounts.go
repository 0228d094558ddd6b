package server

import (
	"github.com/go-chi/chi/v5"

	"github.com/mizzen-dev/mizzen/internal/apiserver/discovery"
	"github.com/mizzen-dev/mizzen/internal/apiserver/openapi"
	"github.com/mizzen-dev/mizzen/internal/apiserver/registry"
)

// apiMounts returns the discovery and OpenAPI routes.
func apiMounts(reg *registry.Registry) ([]func(chi.Router), error) {
	o, err := openapi.New(reg)
	if err != nil {
		return nil, err
	}
	return []func(chi.Router){discovery.New(reg).Mount, o.Mount}, nil
}
