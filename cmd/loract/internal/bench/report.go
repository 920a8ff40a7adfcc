package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/loract/loract/cmd/loract/internal/progress"
)

// DescribePeers logs which peer modules py imports (with versions) and
// how to install the others.
func DescribePeers(log *progress.Log, py Python) {
	if py.Exe == "" {
		log.Printf("no python3 found: peers skipped; install them with: %s", InstallHint)
		return
	}
	var have []string
	for _, pm := range PeerModules {
		if v, ok := py.Versions[pm.Module]; ok {
			have = append(have, pm.Module+" "+v)
		}
	}
	log.Printf("python: %s (%s)", py.Exe, strings.Join(have, ", "))
	if miss := py.Missing(); len(miss) > 0 {
		var pk []string
		for _, pm := range PeerModules {
			if !py.Have[pm.Module] {
				pk = append(pk, pm.Package)
			}
		}
		log.Printf("peers not found: %s — install with: apt-get install %s (or set LORACT_PYTHON to an interpreter that has them)",
			strings.Join(miss, ", "), strings.Join(pk, " "))
	}
}

// WriteJSON writes the records as JSON lines to the file name, through a
// temporary file renamed on success.
func WriteJSON(name string, recs []Record) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range recs {
		if err = enc.Encode(r); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// ReadRecords reads a JSON-lines file of records ('loract bench -json',
// the peer scripts' output, bench/results/*.jsonl). Blank lines and the
// scripts' {"env": …} lines are skipped; any other line that is not a
// record (no method) is an error naming its line number.
func ReadRecords(name string) ([]Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		var r struct {
			Record
			Env Env `json:"env"`
		}
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if r.Env != nil {
			continue
		}
		if r.Method == "" {
			return nil, fmt.Errorf("%s:%d: not a record (no method)", name, line)
		}
		recs = append(recs, r.Record)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return recs, nil
}
