package bench

import (
	"context"
	"errors"
	"strings"
)

// fakePeers stands in for Python: it answers probes with the kernel that
// OPENBLAS_CORETYPE (the last one set) or else def gives, and runs with
// the records of recs[script]; fail[script] makes a run fail after its
// records. It records every call.
type fakePeers struct {
	lib, def string
	// forced maps an OPENBLAS_CORETYPE to the architecture and check the
	// probe reports ("" architecture: the probe fails).
	forced map[string][2]string
	recs   map[Script][]Record
	fail   map[Script]error
	calls  []fakeCall
}

type fakeCall struct {
	script Script
	args   []string
	core   string // OPENBLAS_CORETYPE of the call's environment
}

func coreType(env []string) string {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, "OPENBLAS_CORETYPE="); ok {
			v = s // the last one wins, as in os/exec
		}
	}
	return v
}

func (f *fakePeers) Run(_ context.Context, s Script, args, env []string, each func(Record)) ([]Record, Env, error) {
	core := coreType(env)
	f.calls = append(f.calls, fakeCall{s, args, core})
	arch, check := f.def, "ok"
	if core != "" {
		a, ok := f.forced[core]
		if !ok || a[0] == "" {
			return nil, nil, errors.New("python3: killed by SIGILL")
		}
		arch, check = a[0], a[1]
	}
	line := Env{"blas_check": check, "threadpools": []any{map[string]any{
		"user_api": "blas", "internal_api": f.lib, "version": "0.3.21", "architecture": arch, "num_threads": float64(2)}}}
	if len(args) > 0 && args[0] == "--probe" {
		return nil, line, nil
	}
	var out []Record
	for _, r := range f.recs[s] {
		out = append(out, r)
		if each != nil {
			each(r)
		}
	}
	return out, line, f.fail[s]
}

func (f *fakePeers) runs(s Script) (n int) {
	for _, c := range f.calls {
		if c.script == s && (len(c.args) == 0 || c.args[0] != "--probe") {
			n++
		}
	}
	return n
}
