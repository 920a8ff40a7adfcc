package bench

import (
	"fmt"
)

// Record is one measurement: one method with one setting on one matrix.
// Its JSON form is what the peer scripts print, one object per line.
type Record struct {
	// Peer is the implementation: "loract", "numpy", "sklearn", "scipy"
	// or "torch".
	Peer string `json:"peer"`
	// Method is "rows" (LoRAct QB), "gaussian" (Gaussian QB), "svd"
	// (loract's randomized SVD), "randomized_svd" (scikit-learn),
	// "svd_lowrank" (PyTorch) or "exact".
	Method string `json:"method"`
	// Norm is the power-iteration normaliser of loract's Gaussian methods
	// ("qr", "lu", "none"); empty for the others.
	Norm   string `json:"norm,omitempty"`
	Device string `json:"device"`
	// Dtype is the element type of the input: "fp64", "fp32" or "bf16".
	Dtype string  `json:"dtype"`
	M     int     `json:"m"`
	N     int     `json:"n"`
	K     int     `json:"k"`
	P     int     `json:"p"`
	Q     int     `json:"q"`
	Ms    float64 `json:"ms"`
	// CPUMs is the median process CPU time (user + system, all threads)
	// of the timed calls: core-milliseconds of work, less sensitive than
	// Ms to other programs competing for the cores. 0 if not recorded.
	CPUMs   float64 `json:"cpu_ms,omitempty"`
	MsMin   float64 `json:"ms_min"`
	Repeats int     `json:"repeats"`
	// RelError is ‖A − Â‖_F/‖A‖_F of the first (warm-up) call.
	RelError float64 `json:"rel_error"`
	// RelErrorMean is the mean relative error over all calls, from the
	// identity ‖A − PA‖_F² = ‖A‖_F² − ‖PA‖_F² for the orthogonal projection
	// P every method computes; 0 if not recorded.
	RelErrorMean float64 `json:"rel_error_mean,omitempty"`
	// Error, if not empty, says why the method could not run.
	Error string `json:"error,omitempty"`
	// Kernel names the BLAS a peer ran on, e.g. "openblas 0.3.21
	// SkylakeX, 2 threads (OPENBLAS_CORETYPE=SkylakeX; its own choice:
	// Prescott)"; empty for loract and in records written before it was
	// recorded.
	Kernel string `json:"kernel,omitempty"`
	// Round numbers the rounds of a measurement repeated in rounds
	// ('loract bench -core -rounds'), from 0.
	Round int `json:"round,omitempty"`
}

// Setting returns the method's setting in words, e.g. "p=10 q=7 lu".
func (r Record) Setting() string {
	if r.Method == "exact" {
		return "-"
	}
	s := fmt.Sprintf("p=%d q=%d", r.P, r.Q)
	if r.Norm != "" && r.Q > 0 {
		s += " " + r.Norm
	}
	return s
}

// Label names the implementation and method, e.g. "numpy rows".
func (r Record) Label() string {
	l := r.Peer + " " + r.Method
	if r.Peer == "torch" && r.Device != "cpu" {
		l += " (" + r.Device + ")"
	}
	return l
}

// Err returns the error used for comparisons: the mean over calls when it
// was recorded, else the first call's.
func (r Record) Err() float64 {
	if r.RelErrorMean > 0 {
		return r.RelErrorMean
	}
	return r.RelError
}

// Ok reports whether the record holds a measurement.
func (r Record) Ok() bool { return r.Error == "" && r.Repeats > 0 }

// Shape formats m×n k=….
func Shape(m, n, k int) string { return fmt.Sprintf("%d×%d k=%d", m, n, k) }
