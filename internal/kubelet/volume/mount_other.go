//go:build !linux

package volume

import "errors"

// Mounting is Linux-only: elsewhere Memory emptyDirs fail and the other
// memory-backed volumes are plain directories.

func mountTmpfs(string, int64) error { return errors.ErrUnsupported }

func isMountPoint(string) (bool, error) { return false, nil }

func unmountUnder(string) error { return nil }
