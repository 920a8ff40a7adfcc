"""Times the device's full symmetric eigensolvers on the 4096x4096 float64
Gram matrix of the full thin exact SVD of 8192x4096 (gpu.Backend.ExactSVD
with k = 4096 runs cuSOLVER's dsyevd on it): torch.linalg.eigh and
eigvalsh (cuSOLVER's 64-bit syevd), float32 eigh, and CuPy's eigh; wall
time of 3 calls after a warm-up, synchronised. Whether any of them brings
the full SVD under 0.05x torch.linalg.svd (issue 13): docs/gpu.md, "Exact
SVD".

    python3 bench/syevj/eigh_4096.py
"""
import torch, time
torch.manual_seed(0)
a = torch.randn(8192, 4096, dtype=torch.float64, device='cuda')
s = 1.0/(torch.arange(4096, device='cuda', dtype=torch.float64)+1) + 1e-3
a = a * s
g = a.T @ a
torch.cuda.synchronize()
for name, f in [("torch.linalg.eigh f64 4096", lambda: torch.linalg.eigh(g)),
                ("torch.linalg.eigvalsh f64 4096", lambda: torch.linalg.eigvalsh(g)),
                ("torch.linalg.eigh f32 4096", lambda: torch.linalg.eigh(g.float())),
                ]:
    f(); torch.cuda.synchronize()
    ts=[]
    for _ in range(3):
        t=time.perf_counter(); f(); torch.cuda.synchronize(); ts.append((time.perf_counter()-t)*1e3)
    print(name, sorted(ts))
try:
    import cupy
    gc = cupy.asarray(g)
    cupy.linalg.eigh(gc); cupy.cuda.Device().synchronize()
    ts=[]
    for _ in range(3):
        t=time.perf_counter(); cupy.linalg.eigh(gc); cupy.cuda.Device().synchronize(); ts.append((time.perf_counter()-t)*1e3)
    print("cupy.linalg.eigh f64 4096", sorted(ts))
except Exception as e:
    print("cupy", e)
print(torch.__version__, torch.version.cuda, torch.backends.cuda.preferred_linalg_library())
