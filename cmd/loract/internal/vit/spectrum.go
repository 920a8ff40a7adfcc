package vit

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// LayerSpectrum is the spectrum of one tensor the model saved for
// backward: the singular values (descending) of the Rows×Cols tensor
// saved under the names Layers (q, k and v read the same tensor: it is
// listed once, under every name it was saved as).
type LayerSpectrum struct {
	Layers     []string
	Rows, Cols int
	Values     []float64
}

// SavedSpectra runs one forward pass of m on the batch images of pixels
// (Side² values each), captures the compressible set it saves for
// backward (Run.Main: the inputs of the linear layers and of GELU) and
// returns each distinct tensor's singular values, in the order saved.
// Cost: the forward pass and one SVD per tensor, O(L·d·min(L, d)) each
// for an L×d tensor.
func SavedSpectra(m *Model, pixels []float64, batch int) ([]LayerSpectrum, error) {
	if px := m.Cfg.Side * m.Cfg.Side; batch < 1 || len(pixels) < batch*px {
		return nil, fmt.Errorf("vit: %d pixels hold fewer than %d images of %d", len(pixels), batch, px)
	}
	type capt struct {
		names []string
		x     *mat.Dense
		src   *mat.Dense
	}
	var caps []*capt
	capture := func(layer string, x *mat.Dense) (Stash, error) {
		for _, c := range caps {
			if c.src == x {
				c.names = append(c.names, layer)
				return Plain(layer, x)
			}
		}
		caps = append(caps, &capt{names: []string{layer}, x: mat.DenseCopyOf(x), src: x})
		return Plain(layer, x)
	}
	px := m.Cfg.Side * m.Cfg.Side
	if _, err := m.Forward(pixels[:batch*px], batch, Run{Main: capture, Rest: Plain}, &Tape{}); err != nil {
		return nil, err
	}
	out := make([]LayerSpectrum, 0, len(caps))
	for _, c := range caps {
		var svd mat.SVD
		if !svd.Factorize(c.x, mat.SVDNone) {
			return nil, fmt.Errorf("vit: SVD of the tensor saved as %v failed", c.names)
		}
		r, cols := c.x.Dims()
		out = append(out, LayerSpectrum{Layers: c.names, Rows: r, Cols: cols, Values: svd.Values(nil)})
	}
	return out, nil
}
