// Package bench measures loract against its peers: Go benchmarks over
// methods, backends, shapes and precisions (bench_test.go, run with
// go test -bench), and the machinery behind 'loract bench' and
// 'loract plot': activation-like test matrices with exactly known optimal
// error, timed runs of loract's methods, the Python peer scripts
// (cpu_peers.py: NumPy/OpenBLAS, scikit-learn, SciPy; torch_peer.py:
// PyTorch on CPU or CUDA) driven over .npy files, and the tables that set
// them side by side.
//
// Every measurement is a Record, the schema the peer scripts print as JSON
// lines: method, setting (oversampling p, power iterations q), shape, rank,
// element type, median time of repeated calls after a warm-up, and the
// relative Frobenius error ‖A − Â‖_F/‖A‖_F. Error ÷ optimal divides it by
// the Eckart–Young error of the matrix, known exactly because the test
// matrices are built from their singular values (internal/testmat).
package bench
