package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// CPUInfo is what /proc/cpuinfo says about the processor.
type CPUInfo struct {
	// Model is the model name, "unknown CPU" if not found.
	Model string
	// Flags are the feature flags of the first processor (avx2, fma,
	// avx512f, …).
	Flags map[string]bool
}

// ParseCPUInfo reads the model name and flags of the first processor
// listed in the text of /proc/cpuinfo.
func ParseCPUInfo(text string) CPUInfo {
	c := CPUInfo{Model: "unknown CPU", Flags: map[string]bool{}}
	model, flags := false, false
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name":
			if !model {
				c.Model, model = strings.TrimSpace(val), true
			}
		case "flags":
			if !flags {
				for _, f := range strings.Fields(val) {
					c.Flags[f] = true
				}
				flags = true
			}
		}
	}
	return c
}

// ReadCPUInfo returns ParseCPUInfo of /proc/cpuinfo; without it (not
// Linux) the model is unknown and there are no flags.
func ReadCPUInfo() CPUInfo {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ParseCPUInfo("")
	}
	return ParseCPUInfo(string(data))
}

// WriteMachine writes the machine line (OS, cores, CPU model, load
// average now) and each peer environment line as JSON.
func WriteMachine(out io.Writer, cpu CPUInfo, envs []Env) {
	fmt.Fprintf(out, "\nmachine: %s/%s, %d CPUs (GOMAXPROCS %d), %s; load average at the end: %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cpu.Model, LoadAvg())
	for _, e := range envs {
		if e == nil {
			continue
		}
		js, err := json.Marshal(e)
		if err != nil {
			js = []byte(fmt.Sprintf("%q", err.Error()))
		}
		fmt.Fprintf(out, "peer env: %s\n", js)
	}
}

// LoadAvg returns the 1, 5 and 15 minute load averages (Linux), which say
// whether other work competed for the cores while timing, or "unknown".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
