package gemm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGeneratedKernels runs the generator of kernel_amd64.s (go run
// gen_kernels.go, as go generate does) into a temporary file and checks
// that the committed file is its output byte for byte, so that an edit to
// either alone fails here. go run caches the generator's binary, so after
// the first run this takes well under a second.
func TestGeneratedKernels(t *testing.T) {
	// go test puts the go command of its GOROOT first on PATH.
	goCmd, err := exec.LookPath("go")
	require.NoError(t, err, "the go command")
	out := filepath.Join(t.TempDir(), "kernel_amd64.s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "run", "gen_kernels.go", "-o", out)
	cmd.Env = append(os.Environ(), "GOOS=", "GOARCH=") // build the generator for this machine
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go run gen_kernels.go: %s", msg)
	want, err := os.ReadFile(out)
	require.NoError(t, err)
	got, err := os.ReadFile("kernel_amd64.s")
	require.NoError(t, err)
	if !bytes.Equal(want, got) {
		t.Fatalf("kernel_amd64.s differs from the output of gen_kernels.go (%d vs %d bytes): run go generate ./internal/gemm", len(got), len(want))
	}
}
