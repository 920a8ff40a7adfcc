"""Simulates the GPU subspace route's steps (gpu/subspace.go) in NumPy, in
the eigenbasis of G (G = diag(λ); subspace iteration is basis-invariant up
to rounding), on the benchmark's spectrum σ_j = 1/(j+1) + 1e-3 (q = 4096,
λ = σ²): four unshifted steps with a Cholesky QR each, the prediction of
subspacePredict from the last factor's diagonal d (the constant shift d_ℓ/2,
or the Chebyshev cycle of degree 4 on [0, c·d_ℓ]), then the shifted steps,
with a Rayleigh–Ritz check after each step from three before the
prediction on. Prints per k and rule: the predicted step of the first
check, the first step whose residual meets q·2⁻⁵³·λ₁ ("need"), how many
starts would fail their first check, and d_ℓ/λ_{ℓ+1} after the four steps.

    /usr/bin/python3 bench/subspace/chebshift_sim.py > bench/results/chebshift_sim.txt
"""
import math

import numpy as np


def cholqr(y):
    r = np.linalg.cholesky(y.T @ y).T
    return np.linalg.solve(r.T, y.T).T, r


def cheb_shifts(beta, d):
    roots = [beta / 2 * (1 + math.cos((2 * i + 1) * math.pi / (2 * d))) for i in range(d)]
    out, lo, hi = [], d - 1, 0
    while lo >= hi:
        out.append(roots[hi])
        if lo != hi:
            out.append(roots[lo])
        lo, hi = lo - 1, hi + 1
    return out


def run(lam, k, rule, c=1.0, deg=4, seed=1, first=4, margin=1):
    q, l = len(lam), 2 * k
    v, _ = cholqr(np.random.default_rng(seed).standard_normal((q, l)))
    for _ in range(first):
        v, r = cholqr(lam[:, None] * v)
    d = np.diag(r)
    rate = d[l - 1] / d[k - 1]
    if rule == "const":
        mu = d[l - 1] / 2
        shifts, lrs = [mu], math.log(max(d[l - 1] - mu, mu) / (d[k - 1] - mu))
    else:
        beta = c * d[l - 1]
        shifts = cheb_shifts(beta, deg)
        x = deg * math.acosh((2 * d[k - 1] - beta) / beta)
        lrs = -(x + math.log1p(math.exp(-2 * x)) - math.log(2)) / deg
    tol = q * 2.0**-53
    after = math.log(tol * d[0] / d[k - 1]) - first * math.log(rate)
    pred = first + math.ceil(after / lrs) + margin
    need, steps = None, first
    for i in range(40):
        v, _ = cholqr((lam[:, None] - shifts[i % len(shifts)]) * v)
        steps += 1
        if steps < pred - 3:
            continue
        th, w = np.linalg.eigh(v.T @ (lam[:, None] * v))
        th, w = th[::-1][:k], w[:, ::-1][:, :k]
        x = v @ w
        res = np.linalg.norm(lam[:, None] * x - x * th, axis=0).max() / lam[0]
        if res <= tol and need is None:
            need = steps
        if need is not None and steps >= pred:
            break
    return pred, need, d[l - 1] / lam[l]


def main():
    q = 4096
    j = np.arange(q)
    lam = np.sort((1 / (j + 1) + 1e-3) ** 2)[::-1]
    for k in [32, 64, 128, 256, 512]:
        for rule, c in [("const", 1.0), ("cheb", 1.0), ("cheb", 1.15)]:
            out = [run(lam, k, rule, c=c, seed=s) for s in range(8)]
            fails = sum(1 for p, nd, _ in out if nd is None or nd > p)
            print(f"k={k} {rule} c={c}: predicted {[p for p, _, _ in out]} need {[nd for _, nd, _ in out]} "
                  f"fail {fails}/8, d_l/lambda_l+1 {[round(o[2], 3) for o in out]}", flush=True)


main()
