package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/rsvd"
)

// TestCommittedRecords parses every committed bench/results/*.jsonl: the
// records written before Setting.Method became an activation.Method (and
// "svd" a Gaussian setting in SVD form) still read, and every loract
// record maps to a Setting whose name is the record's method.
func TestCommittedRecords(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "bench", "results", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "bench/results/*.jsonl")
	methods := map[string]int{}
	for _, f := range files {
		recs, err := ReadRecords(f)
		require.NoError(t, err, f)
		require.NotEmpty(t, recs, f)
		for _, r := range recs {
			if r.Peer != "loract" {
				continue
			}
			s, err := SettingOf(r)
			require.NoError(t, err, "%s: %+v", f, r)
			assert.Equal(t, r.Method, s.Name(), f)
			methods[r.Method]++
			if r.Method == "svd" {
				assert.Equal(t, activation.Gaussian, s.Method)
				assert.True(t, s.SVDForm)
			}
		}
	}
	for _, m := range []string{"rows", "gaussian", "svd", "exact"} {
		assert.Positive(t, methods[m], "a committed loract %s record", m)
	}
}

func TestSettingOf(t *testing.T) {
	for _, tc := range []struct {
		rec  Record
		want Setting
	}{
		{Record{Peer: "loract", Method: "rows", P: 10, Q: 1}, Setting{Method: activation.RowSampling, P: 10, Q: 1}},
		{Record{Peer: "loract", Method: "gaussian", Norm: "lu", Q: 3}, Setting{Method: activation.Gaussian, Q: 3, Norm: rsvd.LU}},
		{Record{Peer: "loract", Method: "svd", Norm: "none"}, Setting{Method: activation.Gaussian, SVDForm: true, Norm: rsvd.None}},
		{Record{Peer: "loract", Method: "exact", P: 3}, Setting{Method: activation.ExactSVD}},
	} {
		got, err := SettingOf(tc.rec)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
	for _, r := range []Record{
		{Peer: "numpy", Method: "rows"},
		{Peer: "loract", Method: "randomized_svd"},
		{Peer: "loract", Method: "none"},
		{Peer: "loract", Method: "gaussian", Norm: "cholesky"},
	} {
		_, err := SettingOf(r)
		assert.Error(t, err, "%+v", r)
	}
	assert.Equal(t, "svd p=10 q=7 lu", Setting{Method: activation.Gaussian, SVDForm: true, P: 10, Q: 7, Norm: rsvd.LU}.String())
	assert.Equal(t, "rows p=0 q=2", Setting{Method: activation.RowSampling, Q: 2, Norm: rsvd.LU}.String())
	assert.Equal(t, "exact", Setting{Method: activation.ExactSVD, P: 4}.String())
	g := Setting{Method: activation.Gaussian, Q: 1, Norm: rsvd.QR}
	assert.False(t, g.Same(Setting{Method: activation.Gaussian, Q: 1, Norm: rsvd.LU}), "the normaliser acts at q = 1")
	assert.True(t, Setting{Method: activation.Gaussian}.Same(Setting{Method: activation.Gaussian, Norm: rsvd.LU}), "not at q = 0")
	assert.False(t, g.Same(Setting{Method: activation.Gaussian, SVDForm: true, Q: 1, Norm: rsvd.QR}), "QB is not the SVD form")
	assert.True(t, Setting{Method: activation.ExactSVD}.Same(Setting{Method: activation.ExactSVD, P: 3}))
}

func TestRecordsFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "r.jsonl")
	recs := []Record{{Peer: "loract", Method: "rows", M: 3, Repeats: 1, Ms: 1.5}, {Peer: "numpy", Method: "gaussian", Kernel: "openblas 0.3.21 Haswell"}}
	require.NoError(t, WriteJSON(name, recs))
	got, err := ReadRecords(name)
	require.NoError(t, err)
	assert.Equal(t, recs, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
	assert.Error(t, WriteJSON(filepath.Join(dir, "none", "r.jsonl"), recs))

	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"env\": {\"numpy\": \"1\"}}\n\n{\"peer\": \"numpy\", \"method\": \"rows\"}\n{\"peer\": 3}\n"), 0o644))
	_, err = ReadRecords(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.jsonl:4")
	require.NoError(t, os.WriteFile(bad, []byte("{\"peer\": \"numpy\"}\n"), 0o644))
	_, err = ReadRecords(bad)
	assert.ErrorContains(t, err, "bad.jsonl:1: not a record")
	_, err = ReadRecords(filepath.Join(dir, "absent.jsonl"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
