package network

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Cleanup removes what mizzen's pod network added to the host: the bridge,
// the VXLAN device, the host ends of pod veths ("mz…"), the routes tagged
// with mizzen's protocol number and the DOCKER-USER rules tagged mizzen.
// What is already gone is not an error. The IPAM state is left in place.
func Cleanup(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	h, err := handleAt(cfg.NetNS)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	links, err := dump(h.LinkList)
	if err != nil {
		return fmt.Errorf("clean up pod network: list links: %w", err)
	}
	bridge := -1
	for _, l := range links {
		if l.Attrs().Name == cfg.Bridge {
			bridge = l.Attrs().Index
		}
	}
	for _, l := range links {
		name := l.Attrs().Name
		// Only pods' host ends: on our bridge, or named like one (mz and
		// 12 hex digits of a container ID); other mz* links are not ours.
		ours := l.Attrs().MasterIndex == bridge || isHostVethName(name)
		if strings.HasPrefix(name, hostVethPrefix) && l.Type() == "veth" && ours {
			if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
			}
		}
	}
	for _, name := range []string{cfg.VXLAN, cfg.Bridge} {
		if err := deleteLink(h, name); err != nil {
			errs = append(errs, err)
		}
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if err := syncRoutes(h, nil, family); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, inNS(cfg.NetNS, removeDockerUser))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up pod network: %w", err)
	}
	cfg.Log.Info("Pod network removed")
	return nil
}

// isHostVethName reports whether name is hostVethName of a container ID.
func isHostVethName(name string) bool {
	id, ok := strings.CutPrefix(name, hostVethPrefix)
	if !ok || len(id) != 12 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
