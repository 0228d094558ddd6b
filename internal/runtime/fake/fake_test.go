package fake_test

import (
	"testing"

	"github.com/mizzen-dev/mizzen/internal/runtime"
	"github.com/mizzen-dev/mizzen/internal/runtime/fake"
	"github.com/mizzen-dev/mizzen/internal/runtime/runtimetest"
)

func TestContract(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return fake.New() })
}
