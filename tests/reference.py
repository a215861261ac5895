"""Plain NumPy references the kernels are tested against: slow, obvious, float64."""

import numpy as np


def exhaustive_distances(burst, center, patch_size, search_radius):
    """Distance of every query to every candidate: float64 [M, 2R+1, 2R+1, H+P, W+P].

    Invalid candidates (outside the extended frame, or in the center frame) are +inf.
    """
    burst = np.asarray(burst, dtype=np.float64)
    m, h, w, _ = burst.shape
    p, r = patch_size, search_radius
    pad = p - 1
    ext = np.pad(burst, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    n_rows, n_cols = h + pad, w + pad
    out = np.full((m, 2 * r + 1, 2 * r + 1, n_rows, n_cols), np.inf)
    query = np.lib.stride_tricks.sliding_window_view(ext[center], (p, p), axis=(0, 1))
    for t in range(m):
        if t == center:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(ext[t], (p, p), axis=(0, 1))
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                u0, u1 = max(0, -dy), min(n_rows, n_rows - dy)
                v0, v1 = max(0, -dx), min(n_cols, n_cols - dx)
                if u0 >= u1 or v0 >= v1:
                    continue
                diff = query[u0:u1, v0:v1] - windows[u0 + dy:u1 + dy, v0 + dx:v1 + dx]
                out[t, dy + r, dx + r, u0:u1, v0:v1] = (diff ** 2).sum(axis=(2, 3, 4))
    return out


def nnf_distance(burst, center, nnf, patch_size):
    """True float64 distance of the candidate each nnf entry points to: [H+P, W+P]."""
    burst = np.asarray(burst, dtype=np.float64)
    pad = patch_size - 1
    ext = np.pad(burst, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.empty(nnf.shape[:2])
    for u in range(nnf.shape[0]):
        for v in range(nnf.shape[1]):
            t, dy, dx = (int(x) for x in nnf[u, v])
            query = ext[center, u:u + patch_size, v:v + patch_size]
            match = ext[t, u + dy:u + dy + patch_size, v + dx:v + dx + patch_size]
            out[u, v] = ((query - match) ** 2).sum()
    return out


def craft_target_loop(burst, nnf, patch_size, offset):
    """Patch-craft target by pasting whole matched patches, one patch at a time."""
    burst = np.asarray(burst)
    m, h, w, c = burst.shape
    pad = patch_size - 1
    ext = np.pad(burst, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    canvas = np.full((h + 2 * pad, w + 2 * pad, c), np.nan, dtype=burst.dtype)
    k, l = offset
    for u in range((pad + k) % patch_size, h + pad, patch_size):
        for v in range((pad + l) % patch_size, w + pad, patch_size):
            t, dy, dx = (int(x) for x in nnf[u, v])
            canvas[u:u + patch_size, v:v + patch_size] = \
                ext[t, u + dy:u + dy + patch_size, v + dx:v + dx + patch_size]
    return canvas[pad:pad + h, pad:pad + w]


def tile_stats_loop(y, target, tile_size, tile_stride):
    """s_yr and r_mean tile by tile with np.cov-free plain formulas."""
    y = np.asarray(y, dtype=np.float64)
    r = np.asarray(target, dtype=np.float64) - y
    rows = range(0, y.shape[0] - tile_size + 1, tile_stride)
    cols = range(0, y.shape[1] - tile_size + 1, tile_stride)
    s_yr = np.empty((len(rows), len(cols)))
    r_mean = np.empty_like(s_yr)
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            ty = y[a:a + tile_size, b:b + tile_size].ravel()
            tr = r[a:a + tile_size, b:b + tile_size].ravel()
            s_yr[i, j] = ((ty - ty.mean()) * (tr - tr.mean())).mean()
            r_mean[i, j] = tr.mean()
    return s_yr, r_mean


def ring_match_loop(burst, center, patch_size, hole, search_radius, frames=None,
                    return_distance=False):
    """Plain loops: the (t, dy, dx) of each pixel's nearest ring (window less the hole), over
    candidates whose centre pixel lies in the frame (of ``frames``, default all but the
    center); ties to the first frame, dy, dx. With ``return_distance``, also the distance."""
    m, h, w, _ = burst.shape
    half = patch_size // 2
    ext = np.pad(burst, ((0, 0), (half, half), (half, half), (0, 0)), mode="reflect")
    ext = ext.astype(np.float64)
    mask = np.ones((patch_size, patch_size))
    if hole:
        lead = half - hole // 2
        mask[lead:lead + hole, lead:lead + hole] = 0
    out = np.zeros((h, w, 3), np.int64)
    distance = np.full((h, w), np.inf)
    frames = [t for t in range(m) if t != center] if frames is None else frames
    for u in range(h):
        for v in range(w):
            query, best = ext[center, u:u + patch_size, v:v + patch_size], np.inf
            for t in frames:
                for dy in range(-search_radius, search_radius + 1):
                    for dx in range(-search_radius, search_radius + 1):
                        if not (0 <= u + dy < h and 0 <= v + dx < w):
                            continue
                        cand = ext[t, u + dy:u + dy + patch_size, v + dx:v + dx + patch_size]
                        d = np.float32((((query - cand) ** 2).sum(-1) * mask).sum())
                        if d < best:
                            best, out[u, v] = d, (t, dy, dx)
            distance[u, v] = best
    return (out, distance) if return_distance else out
