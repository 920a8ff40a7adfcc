"""Times the small symmetric eigensolvers a Rayleigh-Ritz check of the
subspace route could use (gpu/subspace.go), on the Rayleigh quotients the
route meets: H = V^T G V for the benchmark's spectrum (sigma_j = 1/(j+1) +
1e-3, q = 4096, k = 128, l = 2k), after 4 steps and after 13 (4 plain, 9
shifted by d_l/2). Prints one JSON line per solver and matrix; CUDA
events, median of 20 after 3 warm-ups.

    python3 bench/syevj/syevj.py
"""
import json, sys
import torch
import cupy, cupyx
from cupyx import cusolver as cxs

torch.manual_seed(1)
dev = "cuda"
q, k = 4096, 128
l = 2 * k
j = torch.arange(q, dtype=torch.float64, device=dev)
lam = (1 / (j + 1) + 1e-3) ** 2
U, _ = torch.linalg.qr(torch.randn(q, q, dtype=torch.float64, device=dev))
G = (U * lam) @ U.T
V, _ = torch.linalg.qr(torch.randn(q, l, dtype=torch.float64, device=dev))


def orth(Y):
    R = torch.linalg.cholesky(Y.T @ Y).T
    return torch.linalg.solve_triangular(R, Y, upper=True, left=False), R


mats = {}
mu = 0.0
for s in range(1, 14):
    V, R = orth(G @ V - mu * V)
    if s == 4:
        d = torch.diagonal(R)
        mu = float(d[l - 1]) / 2
        mats["step4"] = (V.T @ G @ V).contiguous()
mats["step13"] = (V.T @ G @ V).contiguous()


def timed(f, reps=20, warm=3):
    for _ in range(warm):
        f()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


env = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cupy": cupy.__version__}
print(json.dumps({"env": env}))
for name, H in mats.items():
    H = (H + H.T) / 2
    off = float(torch.linalg.norm(H - torch.diag(torch.diagonal(H))) / torch.linalg.norm(H))
    w_ref, Z_ref = torch.linalg.eigh(H)
    rows = {"syevd (torch.linalg.eigh)": lambda: torch.linalg.eigh(H),
            "syevd values only (eigvalsh)": lambda: torch.linalg.eigvalsh(H)}
    Hc = cupy.asarray(H)
    rows["syevj (cupyx.cusolver.syevj)"] = lambda: cxs.syevj(Hc, with_eigen_vector=True)
    for solver, f in rows.items():
        try:
            ms = timed(f)
            out = {"matrix": name, "offdiag_rel": off, "solver": solver, "ms": ms}
            if "syevj" in solver:
                w, Z = cxs.syevj(Hc, with_eigen_vector=True)
                w = torch.as_tensor(w, device=dev)
                out["max_dw_rel"] = float((w - w_ref).abs().max() / w_ref.abs().max())
            print(json.dumps(out))
        except Exception as e:  # a missing binding is a result too
            print(json.dumps({"matrix": name, "solver": solver, "error": repr(e)}))
    sys.stdout.flush()
