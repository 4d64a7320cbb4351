#!/usr/bin/python3
"""numpy reference for tests/unit/passes/test_calib.c: the same definitions as
passes/calib.c (see passes/calib.h), written independently with numpy.
Run: /usr/bin/python3 tests/unit/passes/calib_ref.py  (prints the constants)."""
import numpy as np

NB = 2048
def test_hist():
    i = np.arange(NB)
    h = np.floor(1000 * np.exp(-i / 150.0)) + np.where(i % 7 == 0, 3, 0)
    h[1500:] = 0
    h[2000] = 2
    return h.astype(np.float64)

def test_hist2():
    i = np.arange(NB)
    return (np.floor(1e5 * np.exp(-0.5 * (i / 200.0) ** 2)) + (i % 3 == 0)).astype(np.float64)

def percentile(h, w, p):
    cdf = np.cumsum(h) / h.sum()
    idx = np.searchsorted(cdf, p / 100.0)  # first bin with cdf >= p/100
    return (idx + 1) * w

def smooth(p, eps=1e-4):
    nz = (p != 0).sum(); nzero = p.size - nz
    eps1 = eps * nzero / nz
    return p + np.where(p == 0, eps, -eps1)

def kl(h, w, qb=128):
    best, best_i = np.inf, len(h)
    for i in range(qb, len(h) + 1):
        p = h[:i].copy(); p[i - 1] += h[i:].sum()
        nzm = p != 0
        m = i // qb
        q = np.zeros(i)
        for g in range(qb):
            a = g * m; b = i if g == qb - 1 else a + m
            nz = nzm[a:b].sum()
            if nz: q[a:b] = np.where(nzm[a:b], h[a:b].sum() / nz, 0)
        ps, qs = smooth(p), smooth(q)
        if (ps <= 0).any() or (qs <= 0).any(): continue
        ps = ps / ps.sum(); qs = qs / qs.sum()
        d = np.sum(ps * np.log(ps / qs))
        if d < best: best, best_i = d, i
    return best_i * w

def mse(h, w, levels):
    c = (np.arange(len(h)) + 0.5) * w
    best, bk = np.inf, len(h)
    for k in range(1, len(h) + 1):
        t = k * w; step = t / levels
        inside = h[:k].sum()
        e = inside * step * step / 12 + np.sum(h[k:] * (c[k:] - t) ** 2)
        if e < best: best, bk = e, k
    return bk * w

def qparams(lo, hi, signed, sym):
    qmin, qmax = (-127 if sym else -128, 127) if signed else (0, 255)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if sym:
        a = max(abs(lo), abs(hi)); lo, hi = -a, a
    s = (hi - lo) / (qmax - qmin)
    if s < np.finfo(np.float32).tiny: return 1.0, 0
    zp = int(np.clip(np.round(qmin - lo / s), qmin, qmax))
    return float(np.float32(s)), zp

if __name__ == "__main__":
    h = test_hist(); w = 0.01
    print("total", int(h.sum()))
    for p in (50, 99, 99.9, 99.99):
        print(f"percentile {p}: {percentile(h, w, p)!r}")
    print("kl:", repr(kl(h, w)))
    print("mse127:", repr(mse(h, w, 127)))
    print("mse255:", repr(mse(h, w, 255)))
    h2 = test_hist2()
    print("hist2 kl:", repr(kl(h2, 0.001)), "mse127:", repr(mse(h2, 0.001, 127)),
          "p99.99:", repr(percentile(h2, 0.001, 99.99)))
    for args in [(-1.5, 3.0, True, True), (-1.5, 3.0, False, False), (0.5, 6.0, False, False),
                 (-2.0, 1.0, True, False), (-0.3, 0.7, False, True), (0.0, 0.0, True, True)]:
        s, z = qparams(*args)
        print("qparams", args, f"{s:.9g}", z)
