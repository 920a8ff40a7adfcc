# SciPy gesdd on the matrices of peer.py (docs/exact-svd.md, "Commands"): backward error and orthonormality in units of eps; /usr/bin/python3 resid_gesdd.py
import numpy as np, scipy.linalg
m, n = 4096, 1024
rng = np.random.default_rng(1)
q1, _ = np.linalg.qr(rng.standard_normal((m, n)))
q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
j = np.arange(n)
eps = np.finfo(float).eps
for name, s in {"activation": 1.0 / (j + 1) + 1e-3, "graded": 10.0 ** (-14.0 * j / (n - 1))}.items():
    a = (q1 * s) @ q2.T
    u, sv, vt = scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd")
    r = np.linalg.norm(a - (u * sv) @ vt) / np.linalg.norm(a)
    ou = np.abs(u.T @ u - np.eye(n)).max(); ov = np.abs(vt @ vt.T - np.eye(n)).max()
    print(name, "resid/eps", r / eps, "orthU/eps", ou / eps, "orthV/eps", ov / eps, "max|dsigma|/(eps s1)", np.abs(sv - s).max() / (eps * s[0]))
