package checkconfig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
)

// kernelConfig is the kernel's build configuration (CONFIG_X -> y, m),
// and the file it was read from.
type kernelConfig struct {
	source string
	values map[string]string
}

// loadKernelConfig reads /proc/config.gz or /boot/config-RELEASE; nil
// when neither is there.
func loadKernelConfig(h Host, release string) *kernelConfig {
	if b, err := h.ReadFile("/proc/config.gz"); err == nil {
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if text, err := io.ReadAll(zr); err == nil {
				return parseKernelConfig("/proc/config.gz", text)
			}
		}
	}
	if release != "" {
		name := "/boot/config-" + release
		if b, err := h.ReadFile(name); err == nil {
			return parseKernelConfig(name, b)
		}
	}
	return nil
}

func parseKernelConfig(source string, text []byte) *kernelConfig {
	kc := &kernelConfig{source: source, values: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			kc.values[k] = v
		}
	}
	return kc
}

// moduleIndex is what the host says of its kernel modules: those loaded
// (/proc/modules), built in (/lib/modules/R/modules.builtin) and
// installed (/lib/modules/R/modules.dep).
type moduleIndex struct {
	loaded, builtin, installed map[string]bool
	// lists is true when modules.builtin or modules.dep was read, so a
	// module in neither is missing.
	lists bool
	// dep is true when modules.dep was read, so a module the kernel
	// config says is =m but that is not in it is not installed (Ubuntu
	// ships some in linux-modules-extra).
	dep bool
	// dir is /lib/modules/RELEASE.
	dir string
}

func loadModuleIndex(h Host, release string) moduleIndex {
	mi := moduleIndex{loaded: map[string]bool{}, builtin: map[string]bool{}, installed: map[string]bool{}, dir: "/lib/modules/" + release}
	if b, err := h.ReadFile("/proc/modules"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				mi.loaded[f[0]] = true
			}
		}
	}
	if release == "" {
		return mi
	}
	for file, set := range map[string]map[string]bool{"modules.builtin": mi.builtin, "modules.dep": mi.installed} {
		b, err := h.ReadFile(mi.dir + "/" + file)
		if err != nil {
			continue
		}
		mi.lists = true
		mi.dep = mi.dep || file == "modules.dep"
		for _, line := range strings.Split(string(b), "\n") {
			// kernel/net/bridge/bridge.ko.xz: dep... -> bridge
			path, _, _ := strings.Cut(line, ":")
			base := path[strings.LastIndex(path, "/")+1:]
			if name, _, ok := strings.Cut(base, ".ko"); ok {
				// Module names use _ where file names may use -.
				set[strings.ReplaceAll(name, "-", "_")] = true
			}
		}
	}
	return mi
}

// feature is a kernel feature mizzen uses: a module and its config
// symbol.
type feature struct {
	module, symbol string
	// why says what needs it, for the report.
	why string
	// optional features give a warning when missing.
	optional bool
	// probe, when set, finds the feature some other way (a /proc file, a
	// netlink query); it returns what it found or "".
	probe func(h Host) string
}

// features are the kernel features mizzen needs, in report order.
func features(backend string) []feature {
	return []feature{
		{module: "nf_tables", symbol: "CONFIG_NF_TABLES", why: "the Service proxy's rules", probe: func(h Host) string {
			if h.NFTables() == nil {
				return "answers netlink"
			}
			return ""
		}},
		{module: "nf_conntrack", symbol: "CONFIG_NF_CONNTRACK", why: "Service NAT"},
		{module: "nf_nat", symbol: "CONFIG_NF_NAT", why: "Service NAT"},
		{module: "nft_ct", symbol: "CONFIG_NFT_CT", why: "the proxy's conntrack matches"},
		{module: "nft_nat", symbol: "CONFIG_NFT_NAT", why: "Service DNAT"},
		{module: "nft_masq", symbol: "CONFIG_NFT_MASQ", why: "pod traffic masquerading"},
		{module: "nft_numgen", symbol: "CONFIG_NFT_NUMGEN", why: "Service load balancing"},
		{module: "nft_fib_ipv4", symbol: "CONFIG_NFT_FIB_IPV4", why: "NodePort local-address matches"},
		{module: "nft_reject_ipv4", symbol: "CONFIG_NFT_REJECT_IPV4", why: "rejecting Services without endpoints"},
		{module: "bridge", symbol: "CONFIG_BRIDGE", why: "the pod bridge", probe: existsProbe("/sys/class/net/bridge", "/proc/sys/net/bridge")},
		{module: "veth", symbol: "CONFIG_VETH", why: "pod network interfaces"},
		{module: "br_netfilter", symbol: "CONFIG_BRIDGE_NETFILTER", why: "Service traffic between pods of one node",
			probe: existsProbe("/proc/sys/net/bridge")},
		{module: "vxlan", symbol: "CONFIG_VXLAN", why: "the vxlan network backend", optional: backend != "vxlan"},
		{module: "overlay", symbol: "CONFIG_OVERLAY_FS", why: "Docker's overlay2 storage driver", optional: true,
			probe: func(h Host) string {
				b, err := h.ReadFile("/proc/filesystems")
				if err == nil && containsField(string(b), "overlay") {
					return "in /proc/filesystems"
				}
				return ""
			}},
	}
}

// existsProbe finds a feature by the first of paths that exists.
func existsProbe(paths ...string) func(Host) string {
	return func(h Host) string {
		for _, p := range paths {
			if h.Exists(p) {
				return p + " exists"
			}
		}
		return ""
	}
}

func containsField(text, field string) bool {
	for _, line := range strings.Split(text, "\n") {
		for _, f := range strings.Fields(line) {
			if f == field {
				return true
			}
		}
	}
	return false
}

// checkFeature decides one feature from what the host shows of it.
func checkFeature(h Host, f feature, kc *kernelConfig, mi moduleIndex) Result {
	r := Result{Section: "Kernel features", Name: f.module}
	fix := fmt.Sprintf("load it with `modprobe %s` (and list it in /etc/modules-load.d/mizzen.conf to load it at boot); "+
		"if there is no such module, use a kernel built with %s=y or =m", f.module, f.symbol)
	found := ""
	// notInstalled: the config says =m but modules.dep lacks the module.
	notInstalled := kc != nil && kc.values[f.symbol] == "m" && mi.dep && !mi.installed[f.module]
	switch {
	case mi.loaded[f.module]:
		found = "loaded"
	case kc != nil && kc.values[f.symbol] == "y":
		found = fmt.Sprintf("built in, %s=y", f.symbol)
	case kc != nil && kc.values[f.symbol] == "m" && !notInstalled:
		found = fmt.Sprintf("module, %s=m", f.symbol)
	case mi.builtin[f.module]:
		found = "built in"
	case mi.installed[f.module]:
		found = "module"
	case h.Exists("/sys/module/" + f.module):
		found = "in /sys/module"
	case f.probe != nil:
		found = f.probe(h)
	}
	switch {
	case found != "":
		r.Status, r.Detail = OK, found
		return r
	case notInstalled:
		r.Detail = fmt.Sprintf("%s=m, but %s is not among the modules in %s: needed for %s", f.symbol, f.module, mi.dir, f.why)
		fix = "install the kernel's extra modules (on Ubuntu: apt-get install linux-modules-extra-$(uname -r), " +
			"or linux-modules-extra-raspi on a Raspberry Pi)"
	case kc != nil || mi.lists:
		r.Detail = "missing: needed for " + f.why
	default:
		// Nothing says it is missing either: without a kernel config or
		// module lists, a feature built in shows nowhere.
		r.Status, r.Detail = Warn, "not found, and no kernel config (/proc/config.gz, /boot/config-*) or module list to tell: needed for "+f.why
		r.Fix = fix
		return r
	}
	r.Status, r.Fix = Fail, fix
	if f.optional {
		r.Status = Warn
	}
	if f.module == "vxlan" && r.Status == Fail {
		r.Fix += "; or use --network-backend host-gw"
	}
	return r
}
