# Times variants of gpu/kernels.cu's one-block Cholesky kernel cholblk64 on
# a CUDA card with CuPy (the device machine has no Go): chb.cu is the
# kernel with two compile-time switches (USE_REG: the diagonal block in
# registers or in shared memory; CHB_THREADS: the block size) and a
# run-time mode mask that switches phases off (1: trailing update, 2: the
# panel rows, 4: the diagonal block), so that each phase's time is the
# difference of two rows. One JSON line per (ℓ, variant), beside
# cupy.linalg.cholesky (cuSOLVER potrf). Usage:
#   python3 bench/cholblk/chb.py bench/cholblk/chb.cu
# Record: bench/results/gpu/cholblk_variants_h200_2026-12-02.jsonl; the
# conclusions are in docs/gpu.md ("Tried, considered and not built").
import cupy as cp, numpy as np, json, sys
src = open(sys.argv[1]).read()
out = []
def gram(l, cond, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((4096, l)))
    v, _ = np.linalg.qr(rng.standard_normal((l, l)))
    s = cond ** (-0.5 * np.arange(l) / (l - 1))
    y = (q * s) @ v.T
    return y.T @ y
def timeit(f, reps=20):
    f()
    ts = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record(); f(); b.record(); b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b) * 1000)
    return float(np.median(ts))
for l in [64, 128, 256, 512]:
    g = gram(l, 1e8, l)
    G = cp.asarray(g, order='F')
    Rref = np.linalg.cholesky(g).T
    u = 2.0 ** -53
    shift, rel = 2 * (4096 + l * (l + 1)) * u, 10 * (4096 + l) * u
    tp = timeit(lambda: cp.linalg.cholesky(G))
    out.append({"l": l, "variant": "cupy potrf", "us": tp})
    for reg in [0, 1]:
        for th in [256, 512, 1024]:
            try:
                mod = cp.RawModule(code=src, options=('-std=c++17', f'-DUSE_REG={reg}', f'-DCHB_THREADS={th}'))
                k = mod.get_function('chb')
            except Exception as e:
                out.append({"l": l, "reg": reg, "threads": th, "error": str(e)[:300]}); continue
            lp = (l + 1) & ~1
            smem = (2 * 32 * 32 + lp + 32 * lp + 64) * 8
            k.max_dynamic_shared_size_bytes = smem
            R = cp.zeros((l, l), order='F')
            info = cp.zeros(2, dtype=cp.int32)
            def launch(mode):
                k((1,), (th,), (G, np.int32(l), R, np.int32(l), np.int32(l), np.float64(shift), np.float64(rel), info, np.int32(mode)), shared_mem=smem)
            launch(0); cp.cuda.Device().synchronize()
            r = np.triu(cp.asnumpy(R))
            err = float(np.linalg.norm(r - Rref) / np.linalg.norm(Rref))
            res = float(np.linalg.norm(r.T @ r - g) / np.linalg.norm(g))
            rec = {"l": l, "reg": reg, "threads": th, "regs": k.num_regs, "local": k.local_size_bytes, "info": int(info[0]), "relerr": err, "resid": res}
            for mode, name in [(0, "all"), (1, "no trailing"), (3, "no panel/trailing"), (7, "copy only")]:
                rec[name] = timeit(lambda: launch(mode))
            out.append(rec)
for r in out: print(json.dumps(r))
