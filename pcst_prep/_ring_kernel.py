"""Numba kernel for ring matching: the match of every pixel by the ring around it. No I/O.

The query of pixel (u, v) is the p x p window of the center frame centred on it, less the
h x h window centred on it (the hole); a candidate is the same ring around (u + dy, v + dx) in
another frame, for every displacement of the dense search window whose centre pixel lies in
the frame. Frames come mirror-extended by ``half = p // 2`` pixels, ``[row, col, channel]``.

One task per (frame, dy): for each dx, the squared differences of the overlapping region go
into an integral image (float64), from which each query's window and hole sums are read in
O(1). Within a task a strict ``<`` keeps the first dx of equal distance; the tasks' results
are merged in (frame, dy) order with a strict ``<``: ties go to the first frame, then the
smallest dy, then the smallest dx, whatever the thread count.
"""

import numba as nb
import numpy as np

NO_MATCH = np.float32(3.0e38)


@nb.njit(cache=True, nogil=True)
def _task(center, other, f, dy, radius, patch, hole, rows, cols, best, match):
    ext_h, ext_w, channels = center.shape
    half = patch // 2
    height, width = ext_h - 2 * half, ext_w - 2 * half
    lead = half - hole // 2  # from a window's top-left to its hole's top-left
    u_lo, u_hi = max(rows[0], -dy), min(rows[1], height - dy)
    integral = np.zeros((ext_h + 1, ext_w + 1))
    for dx in range(-radius, radius + 1):
        v_lo, v_hi = max(cols[0], -dx), min(cols[1], width - dx)
        if u_lo >= u_hi or v_lo >= v_hi:
            continue
        r_lo, r_hi = u_lo, u_hi + patch - 1
        s_lo, s_hi = v_lo, v_hi + patch - 1
        # the integral's first row and column of the region read as zero
        for s in range(s_lo, s_hi + 1):
            integral[r_lo, s] = 0.0
        for r in range(r_lo, r_hi + 1):
            integral[r, s_lo] = 0.0
        for r in range(r_lo, r_hi):
            acc = 0.0
            for s in range(s_lo, s_hi):
                d = 0.0
                for c in range(channels):
                    e = center[r, s, c] - other[r + dy, s + dx, c]
                    d += e * e
                acc += d
                integral[r + 1, s + 1] = integral[r, s + 1] + acc
        for u in range(u_lo, u_hi):
            for v in range(v_lo, v_hi):
                a, b = u + patch, v + patch
                window = integral[a, b] - integral[u, b] - integral[a, v] + integral[u, v]
                if hole > 0:
                    hu, hv = u + lead, v + lead
                    ha, hb = hu + hole, hv + hole
                    window -= (integral[ha, hb] - integral[hu, hb] - integral[ha, hv]
                               + integral[hu, hv])
                dist = np.float32(window)
                if dist < best[u - rows[0], v - cols[0]]:
                    best[u - rows[0], v - cols[0]] = dist
                    match[u - rows[0], v - cols[0], 0] = f
                    match[u - rows[0], v - cols[0], 1] = dy
                    match[u - rows[0], v - cols[0], 2] = dx


@nb.njit(cache=True, nogil=True, parallel=True)
def ring_search(center, others, radius, patch, hole, rows, cols, n_threads):
    """Best (frame, dy, dx) of every pixel of a region of the center frame.

    Parameters
    ----------
    center : float32 [H + 2 half, W + 2 half, C]
    others : float32 [F, H + 2 half, W + 2 half, C]
    radius, patch, hole : int (patch odd, hole odd and < patch, or 0 for no hole)
    rows, cols : (start, stop) of the queries, in frame coordinates
    n_threads : int, how many groups of tasks run in parallel (the result does not depend on it)

    Returns
    -------
    distance float32 [h, w] and int32 [h, w, 3] (index into ``others``, dy, dx) of the
    region's h x w pixels.
    """
    height, width = rows[1] - rows[0], cols[1] - cols[0]
    n_dy = 2 * radius + 1
    n_tasks = others.shape[0] * n_dy
    # contiguous groups of tasks, each with its own best: memory per thread, not per task
    n_groups = max(1, min(n_tasks, n_threads))
    bests = np.full((n_groups, height, width), NO_MATCH, np.float32)
    matches = np.zeros((n_groups, height, width, 3), np.int32)
    for g in nb.prange(n_groups):
        for task in range(g * n_tasks // n_groups, (g + 1) * n_tasks // n_groups):
            f, i = divmod(task, n_dy)
            _task(center, others[f], f, i - radius, radius, patch, hole, rows, cols, bests[g],
                  matches[g])
    distance = bests[0].copy()
    match = matches[0].copy()
    for g in range(1, n_groups):
        for u in range(height):
            for v in range(width):
                if bests[g, u, v] < distance[u, v]:
                    distance[u, v] = bests[g, u, v]
                    match[u, v] = matches[g, u, v]
    return distance, match
