//go:build windows

package gpu

import "fmt"

// openLib reports CUDA unavailable: the package loads the Linux CUDA
// libraries (libcuda.so.1, …) through purego's dlopen, which has no
// Windows counterpart here, so Open and Available return ErrUnavailable
// and the module still builds and tests on Windows.
func openLib(names []string) (uintptr, string, error) {
	return 0, "", fmt.Errorf("%w: loading %s is not supported on windows", ErrUnavailable, names[0])
}

func sym(lib uintptr, fptr any, name string) error {
	return fmt.Errorf("%w: symbol %s: no dynamic loader on windows", ErrUnavailable, name)
}
