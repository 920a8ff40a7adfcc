//go:build !windows

package gpu

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// openLib opens the first of names the dynamic loader finds.
func openLib(names []string) (uintptr, string, error) {
	var msgs []string
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, n, nil
		}
		msgs = append(msgs, err.Error())
	}
	return 0, "", fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(msgs, "; "))
}

// sym binds the C function name in lib to *fptr. A missing symbol is an
// error, not a panic.
func sym(lib uintptr, fptr any, name string) error {
	p, err := purego.Dlsym(lib, name)
	if err != nil || p == 0 {
		return fmt.Errorf("%w: symbol %s not found", ErrUnavailable, name)
	}
	purego.RegisterFunc(fptr, p)
	return nil
}
