package bench

import (
	"context"
)

// fakePeers stands in for Python: a run prints the records of
// recs[script]; fail[script] makes a run fail after its records. It
// records every call.
type fakePeers struct {
	recs  map[Script][]Record
	fail  map[Script]error
	calls []fakeCall
}

type fakeCall struct {
	script Script
	args   []string
	env    []string
}

func (f *fakePeers) Run(_ context.Context, s Script, args, env []string, each func(Record)) ([]Record, Env, error) {
	f.calls = append(f.calls, fakeCall{s, args, env})
	var out []Record
	for _, r := range f.recs[s] {
		out = append(out, r)
		if each != nil {
			each(r)
		}
	}
	return out, Env{"numpy": "1.24.2"}, f.fail[s]
}

func (f *fakePeers) runs(s Script) (n int) {
	for _, c := range f.calls {
		if c.script == s {
			n++
		}
	}
	return n
}
