package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs at dir, of at most size bytes when size > 0.
func mountTmpfs(dir string, size int64) error {
	opts := ""
	if size > 0 {
		opts = "size=" + strconv.FormatInt(size, 10)
	}
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts)
}

// mountPoints returns the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeOctal(fields[4]))
	}
	return out, sc.Err()
}

// unescapeOctal decodes the \ooo escapes of mountinfo (\040 for a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isMountPoint reports whether a filesystem is mounted at dir, by comparing
// its device with its parent's (cheap enough for every pod sync; it misses
// bind mounts within one filesystem, which mizzen does not make here).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

// unmountUnder unmounts everything mounted at or below dir, deepest first,
// and fails if anything stays mounted (removing the directory would then
// delete what the mount shows).
func unmountUnder(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	under := func() ([]string, error) {
		mps, err := mountPoints()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, mp := range mps {
			if mp == real || strings.HasPrefix(mp, real+"/") {
				out = append(out, mp)
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(out)))
		return out, nil
	}
	mps, err := under()
	if err != nil || len(mps) == 0 {
		return err
	}
	for _, mp := range mps {
		if err := unix.Unmount(mp, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if left, err := under(); err != nil || len(left) > 0 {
		return errors.Join(err, fmt.Errorf("still mounted: %s", strings.Join(left, ", ")))
	}
	return nil
}
