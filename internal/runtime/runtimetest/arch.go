package runtimetest

import (
	"os"
	goruntime "runtime"
)

func goarch() string { return goruntime.GOARCH }

func hostname() (string, error) { return os.Hostname() }
