package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/mizzen-dev/mizzen/internal/atomicfile"
)

// stateFile is the name of the IPAM state file under Config.StateDir.
const stateFile = "allocations.json"

// allocation is one address handed to a sandbox.
type allocation struct {
	IP        netip.Addr `json:"ip"`
	Allocated time.Time  `json:"allocated"`
}

// ipamState is what is persisted: the pod CIDR the allocations belong to,
// the last address handed out (where round-robin resumes) and the
// allocations by sandbox id.
type ipamState struct {
	PodCIDR     netip.Prefix           `json:"podCIDR"`
	Last        netip.Addr             `json:"last,omitzero"`
	Allocations map[string]*allocation `json:"allocations"`
}

// ipam hands out addresses of one pod CIDR. It is not safe for concurrent
// use; Network serialises calls with its mutex.
type ipam struct {
	path  string
	state ipamState
	used  map[netip.Addr]string // address -> sandbox id, derived from state
}

// loadIPAM reads the state under dir, starting fresh when there is none or
// when it belongs to another pod CIDR (a new cluster).
func loadIPAM(dir string, cidr netip.Prefix) (*ipam, bool, error) {
	if !cidr.IsValid() {
		return nil, false, fmt.Errorf("invalid pod CIDR %v", cidr)
	}
	cidr = cidr.Masked()
	// Beyond /30 (/126) nothing is left past the network address, the
	// gateway and the broadcast address.
	if cidr.Bits() > cidr.Addr().BitLen()-2 {
		return nil, false, fmt.Errorf("pod CIDR %v is too small", cidr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create IPAM dir: %w", err)
	}
	// Temporary files of writes cut short by a crash: never read, so gone.
	a := &ipam{path: filepath.Join(dir, stateFile), used: map[netip.Addr]string{}}
	atomicfile.RemoveTemps(a.path)
	a.state = ipamState{PodCIDR: cidr, Allocations: map[string]*allocation{}}
	data, err := os.ReadFile(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return a, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read IPAM state: %w", err)
	}
	var st ipamState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, false, fmt.Errorf("parse IPAM state %s: %w", a.path, err)
	}
	if st.PodCIDR != cidr {
		return a, true, nil // another cluster's leases: start fresh
	}
	if st.Allocations == nil {
		st.Allocations = map[string]*allocation{}
	}
	a.state = st
	for id, al := range st.Allocations {
		a.used[al.IP] = id
	}
	return a, false, nil
}

// reserved reports whether ip is never handed out: the network address,
// the gateway and (IPv4) the broadcast address.
func (a *ipam) reserved(ip netip.Addr) bool {
	p := a.state.PodCIDR
	return ip == p.Addr() || ip == p.Addr().Next() || (ip.Is4() && ip == lastAddr(p))
}

// get returns id's address, if any.
func (a *ipam) get(id string) (netip.Addr, bool) {
	al, ok := a.state.Allocations[id]
	if !ok {
		return netip.Addr{}, false
	}
	return al.IP, true
}

// allocate returns id's address, handing out a new one if id has none: the
// first free address after the last one handed out, wrapping around, so a
// released address is reused only after the others. The new state is
// persisted before allocate returns.
func (a *ipam) allocate(id string, now time.Time) (netip.Addr, bool, error) {
	if ip, ok := a.get(id); ok {
		return ip, false, nil
	}
	p := a.state.PodCIDR
	start := a.state.Last
	if !p.Contains(start) {
		start = p.Addr().Next()
	}
	ip := start
	for {
		ip = ip.Next()
		if !p.Contains(ip) {
			ip = p.Addr()
		}
		if _, busy := a.used[ip]; !busy && !a.reserved(ip) {
			break
		}
		if ip == start {
			return netip.Addr{}, false, fmt.Errorf("pod CIDR %v is exhausted: %d addresses in use", p, len(a.used))
		}
	}
	prevLast := a.state.Last
	a.state.Allocations[id] = &allocation{IP: ip, Allocated: now.UTC()}
	a.used[ip] = id
	a.state.Last = ip
	if err := a.save(); err != nil {
		delete(a.state.Allocations, id)
		delete(a.used, ip)
		a.state.Last = prevLast
		return netip.Addr{}, false, err
	}
	return ip, true, nil
}

// release frees id's address; releasing an unknown id is a no-op.
func (a *ipam) release(id string) error {
	al, ok := a.state.Allocations[id]
	if !ok {
		return nil
	}
	delete(a.state.Allocations, id)
	delete(a.used, al.IP)
	if err := a.save(); err != nil {
		a.state.Allocations[id] = al
		a.used[al.IP] = id
		return err
	}
	return nil
}

// save writes the state atomically and durably: a crash cannot bring back
// an older state that misses an address in use.
func (a *ipam) save() error {
	data, err := json.MarshalIndent(a.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode IPAM state: %w", err)
	}
	if err := atomicfile.Write(a.path, data, 0o600); err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	return nil
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		hostBits := max(0, min(8, (i+1)*8-p.Bits()))
		b[i] |= byte(1<<hostBits - 1)
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip
}
