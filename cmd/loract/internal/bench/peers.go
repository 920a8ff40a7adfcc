package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The peer scripts are embedded so that 'loract bench' runs from any
// directory; WriteScripts puts them on disk for the interpreter.
var (
	//go:embed cpu_peers.py
	cpuPeersPy []byte
	//go:embed torch_peer.py
	torchPeerPy []byte
	//go:embed peer_env.py
	peerEnvPy []byte
)

// Script names a peer script.
type Script string

// The peer scripts.
const (
	// CPUPeers is cpu_peers.py: NumPy/OpenBLAS, scikit-learn and SciPy.
	CPUPeers Script = "cpu_peers.py"
	// TorchPeer is torch_peer.py: PyTorch on the CPU or CUDA.
	TorchPeer Script = "torch_peer.py"
)

// Needs returns the peer modules the script cannot run without.
func (s Script) Needs() []string {
	if s == TorchPeer {
		return []string{"numpy", "torch"}
	}
	return []string{"numpy"}
}

// Runner runs a peer script with args under the environment env (nil:
// this process's), calling each (if not nil) for every record as it is
// printed, and returns the records, the script's environment line and, if
// the script failed, an error with the records printed before it. It is
// the seam where tests put a stand-in for Python.
type Runner interface {
	Run(ctx context.Context, s Script, args, env []string, each func(Record)) ([]Record, Env, error)
}

// Scripts runs the embedded peer scripts with an interpreter, from the
// folder they were written to.
type Scripts struct {
	Python Python
	Dir    string
}

// NewScripts writes the peer scripts into dir (WriteScripts) for py.
func NewScripts(py Python, dir string) (*Scripts, error) {
	if _, _, err := WriteScripts(dir); err != nil {
		return nil, err
	}
	return &Scripts{Python: py, Dir: dir}, nil
}

// Run runs script s (Runner).
func (sc *Scripts) Run(ctx context.Context, s Script, args, env []string, each func(Record)) ([]Record, Env, error) {
	return sc.Python.RunScript(ctx, filepath.Join(sc.Dir, string(s)), args, env, each)
}

// PeerModules are the Python modules the peers need, with the Debian
// package that installs each.
var PeerModules = []struct{ Module, Package string }{
	{"numpy", "python3-numpy"},
	{"scipy", "python3-scipy"},
	{"sklearn", "python3-sklearn"},
	{"torch", "python3-torch"},
	{"threadpoolctl", "python3-threadpoolctl"},
}

// InstallHint is the command that installs every peer on Debian/Ubuntu.
const InstallHint = "apt-get install python3-numpy python3-scipy python3-sklearn python3-torch"

// Python is an interpreter and the peer modules it can import.
type Python struct {
	Exe  string
	Have map[string]bool
	// Versions holds each importable module's __version__.
	Versions map[string]string
}

// Missing returns the peer modules the interpreter cannot import.
func (py Python) Missing() []string {
	var out []string
	for _, pm := range PeerModules {
		if !py.Have[pm.Module] {
			out = append(out, pm.Module)
		}
	}
	return out
}

// probe lists the importable peer modules and their versions without
// importing them (importing torch alone takes seconds).
const probe = `
import importlib.util, json
try:
    import importlib.metadata as md
except ImportError:
    md = None
out = {}
for m, dist in [("numpy", "numpy"), ("scipy", "scipy"), ("sklearn", "scikit-learn"), ("torch", "torch"), ("threadpoolctl", "threadpoolctl")]:
    try:
        if importlib.util.find_spec(m) is None:
            continue
    except Exception:
        continue
    v = "?"
    try:
        v = md.version(dist) if md else "?"
    except Exception:
        pass
    out[m] = v
print(json.dumps(out))
`

// FindPython returns the interpreter that can import the most peer
// modules among $LORACT_PYTHON, python3 on $PATH and /usr/bin/python3 (a
// pyenv or virtualenv python3 on $PATH often lacks the Debian packages).
// Exe is empty if none runs.
func FindPython(ctx context.Context) Python {
	var cands []string
	if p := os.Getenv("LORACT_PYTHON"); p != "" {
		cands = append(cands, p)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	var best Python
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		out, err := exec.CommandContext(ctx, c, "-c", probe).Output()
		if err != nil {
			continue
		}
		var v map[string]string
		if json.Unmarshal(bytes.TrimSpace(out), &v) != nil {
			continue
		}
		py := Python{Exe: c, Have: map[string]bool{}, Versions: v}
		for m := range v {
			py.Have[m] = true
		}
		if best.Exe == "" || len(py.Have) > len(best.Have) {
			best = py
		}
	}
	return best
}

// WriteScripts writes the peer scripts and the module they share
// (peer_env.py) into dir and returns the scripts' paths.
func WriteScripts(dir string) (cpuPeers, torchPeer string, err error) {
	cpuPeers = filepath.Join(dir, string(CPUPeers))
	torchPeer = filepath.Join(dir, string(TorchPeer))
	for _, f := range []struct {
		name string
		data []byte
	}{{cpuPeers, cpuPeersPy}, {torchPeer, torchPeerPy}, {filepath.Join(dir, "peer_env.py"), peerEnvPy}} {
		if err := os.WriteFile(f.name, f.data, 0o644); err != nil {
			return "", "", err
		}
	}
	return cpuPeers, torchPeer, nil
}

// TimingEnv returns the environment for timing peers: this process's, less
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which pin OpenBLAS to another
// kernel (a workaround set in some environments; the two are removed
// together, since a cache size tuned for one kernel misleads another);
// OpenBLAS then picks the kernel for the CPU it runs on, which the scripts
// record through threadpoolctl, and ChooseKernel decides whether to force
// a better one.
func TimingEnv() []string { return withoutOpenBLAS(os.Environ()) }

func withoutOpenBLAS(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") || strings.HasPrefix(kv, "OPENBLAS_L2_SIZE=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Env is the environment line a peer script prints first.
type Env map[string]any

// RunScript runs a peer script with args under env, calling each (if not
// nil) for every record as it is printed, and returns the records and the
// script's environment line. Lines that are not JSON objects are ignored;
// the script's stderr is returned in the error if it fails.
func (py Python) RunScript(ctx context.Context, script string, args []string, env []string, each func(Record)) ([]Record, Env, error) {
	cmd := exec.CommandContext(ctx, py.Exe, append([]string{script}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	var recs []Record
	var envLine Env
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var probe struct {
			Env Env `json:"env"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Env != nil {
			envLine = probe.Env
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.Method == "" {
			continue
		}
		recs = append(recs, r)
		if each != nil {
			each(r)
		}
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 && len(msg) > 2000 {
			msg = msg[i+1:]
		}
		return recs, envLine, fmt.Errorf("%s %s: %v: %s", filepath.Base(py.Exe), filepath.Base(script), err, msg)
	}
	return recs, envLine, nil
}
