package bench

// gpuCases returns the GPU backend cases; none until package gpu lands.
func gpuCases() []backendCase { return nil }
