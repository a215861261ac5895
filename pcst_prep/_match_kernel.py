"""Numba kernels for exhaustive block matching. No I/O, no defaults: plain arrays in and out.

Layout: frames are channel-planar and mirror-extended, ``frame[c, row, col]``. A query is the
p x p window of the center frame with top-left (u, v); a candidate is the window of frame t
with top-left (u + dy, v + dx).

The other frames come in sets of ``set_size`` frames stored interleaved, column-major over the
set: ``planes[s, q, c, row, m * set_size + i]`` is frame i of set s at guarded column
``m * step + q``.
The work is split into items (s, dy, dx_lo, n_dx): the candidates of every frame of set s at
vertical shift dy and horizontal shifts dx = dx_lo + step * k, k < n_dx (step 1 for a dense
window; larger for the reference's coarse grid). Their lanes ``k * set_size + i`` are
contiguous in memory, so one item carries set_size times the candidates of one frame: for the
dense radius-37 search of a 7-frame burst 450 lanes instead of 75, which shares each column
step's fixed costs (call, alias checks, loop tails, the test against the best distance) among
six times the work.
One item sweeps the query rows u with running sums:

- ``colsum[j, lane]``: sum over rows u..u+p-1 of the squared difference at center column j.
  Moving down one row adds the entering row and subtracts the leaving one.
- ``box[lane]``: slides along the columns and holds the p x p distance of query (u, v) to its
  candidate at (u + dy, v + dx_lo + step * k) in frame i.

Every inner loop runs over lanes of flat arrays with unsigned offsets: no array views (each is
a reference-counted struct) and no wrap-around code for possibly negative indices, so LLVM's
loop vectoriser emits plain SIMD code. The other frames carry ``guard`` >= max |dx| zero
columns on each side so that every lane reads valid memory, and are split into ``step`` column
phases so that candidates ``step`` columns apart are adjacent; lanes whose candidate falls
outside the frame are never chosen.

Items are visited in search order (the caller lists dy = 0, -1, 1, -2, 2, ..., within a set the
frames nearest first), so that good matches are found early and the scalar update of the best
match (taken only when some lane beats it) stays rare. Each item is computed on its own, so the
value computed for a candidate does not depend on the thread count, and a strict ``<`` gives
ties to the first item, then the first frame of the set, then the smallest dx, whatever the
number of threads.
"""

import numba as nb
import numpy as np

# "No match yet". Finite, so that comparisons stay plain float comparisons.
NO_MATCH = np.float32(3.0e38)
# Lanes (candidates of one item) are computed in multiples of this: a trip count that is not a
# multiple of the vector width leaves a slow scalar remainder loop.
LANES = 16


@nb.njit(cache=True, nogil=True)
def padded_lanes(n):
    """n rounded up to a multiple of LANES."""
    return (n + LANES - 1) // LANES * LANES


@nb.njit(cache=True, nogil=True)
def _any_below(values, lo, hi, bound):
    """True if any of values[lo:hi] < bound. Slicing first lets LLVM vectorise the loop (an
    index that might be negative makes Numba emit wrap-around code for every element)."""
    window = values[lo:hi]
    hit = False
    for i in range(window.size):
        hit |= window[i] < bound
    return hit


@nb.njit(cache=True, nogil=True, inline="always")
def _floordiv(a, step):
    """a // step, without an integer division when step is 1 (the dense search): the sweep
    needs up to four per column step, and integer divisions are slow."""
    return a if step == 1 else a // step


@nb.njit(cache=True, nogil=True, inline="always")
def _divmod_step(a, step):
    """(a % step, a // step), without divisions when step is 1 (see _floordiv)."""
    return (0, a) if step == 1 else (a % step, a // step)


# The row loops may contract a * a + b into a fused multiply-add: deterministic (the same code
# runs whatever the thread count), faster, and rounded no more than without it.
@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _slide_rgb(colbuf, col_off, n, flat, in_off, out_off, plane, y0, y1, y2, z0, z1, z2):
    """colbuf[col_off:col_off + n] += the squared RGB differences of the entering row (center
    values y, frame lanes from in_off) minus those of the leaving row (z, out_off); the
    channels of the frame lie ``plane`` apart. The hot loop."""
    for k in range(n):
        kk = np.uint64(k)
        i = in_off + kk
        o = out_off + kk
        e0, e1, e2 = y0 - flat[i], y1 - flat[i + plane], y2 - flat[i + plane + plane]
        f0, f1, f2 = z0 - flat[o], z1 - flat[o + plane], z2 - flat[o + plane + plane]
        c = col_off + kk
        colbuf[c] += (e0 * e0 + e1 * e1 + e2 * e2) - (f0 * f0 + f1 * f1 + f2 * f2)


@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _add_rgb(colbuf, col_off, n, flat, in_off, plane, y0, y1, y2):
    """colbuf[col_off:col_off + n] += the squared RGB differences of one row (see _slide_rgb)."""
    for k in range(n):
        kk = np.uint64(k)
        i = in_off + kk
        e0, e1, e2 = y0 - flat[i], y1 - flat[i + plane], y2 - flat[i + plane + plane]
        c = col_off + kk
        colbuf[c] += e0 * e0 + e1 * e1 + e2 * e2


@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _slide_channel(colbuf, col_off, n, flat, in_off, out_off, y, z):
    """_slide_rgb for one channel (any channel count other than 3)."""
    for k in range(n):
        kk = np.uint64(k)
        a = y - flat[in_off + kk]
        b = z - flat[out_off + kk]
        colbuf[col_off + kk] += a * a - b * b


@nb.njit(cache=True, nogil=True, fastmath={"contract"})
def _add_channel(colbuf, col_off, n, flat, in_off, y):
    """_add_rgb for one channel."""
    for k in range(n):
        kk = np.uint64(k)
        a = y - flat[in_off + kk]
        colbuf[col_off + kk] += a * a


@nb.njit(cache=True, nogil=True)
def _slide_box(box, colbuf, col_off, old_off, bound):
    """box += colbuf[col_off:] - colbuf[old_off:] (box.size lanes); returns True if any new
    box value is below ``bound``."""
    hit = False
    for k in range(box.size):
        kk = np.uint64(k)
        value = box[k] + (colbuf[col_off + kk] - colbuf[old_off + kk])
        box[k] = value
        hit |= value < bound
    return hit


@nb.njit(cache=True, nogil=True)
def _add_row(colbuf, col_off, n, flat, off, plane, center, row, j):
    """Add row ``row`` of the center's column j against the lanes at ``off``."""
    channels = center.shape[0]
    if channels == 3:
        _add_rgb(colbuf, col_off, n, flat, off, plane, center[0, row, j], center[1, row, j],
                 center[2, row, j])
    else:
        for c in range(channels):
            _add_channel(colbuf, col_off, n, flat, off + np.uint64(c) * plane, center[c, row, j])


@nb.njit(cache=True, nogil=True)
def _sweep_item(center, planes, ids, dy, dx_lo, n_dx, step, guard, patch_size, colbuf, box,
                best_dist, best_index):
    """Update best_dist/best_index with the candidates of the frames ``ids`` (one set of
    ``planes``) at vertical shift dy and horizontal shifts dx_lo + step * k, k < n_dx.

    Lanes are k * set_size + i; they are computed up to padded_lanes(n_dx * set_size) (no
    scalar remainder loops): the extra lanes start at +inf, turn NaN and so never compare below
    a bound."""
    channels, _, width = center.shape
    n_rows, n_cols = best_dist.shape
    set_size = ids.size
    n_real = n_dx * set_size
    n_pad = padded_lanes(n_real)
    u_start = max(0, -dy)
    u_stop = min(n_rows, n_rows - dy)
    if u_start >= u_stop:
        return
    base = guard + dx_lo  # guarded frame column of (center column 0, k = 0)
    colsum = colbuf[:(width + 1) * n_pad].reshape((width + 1, n_pad))
    colsum[:, :n_real] = 0.0
    colsum[:, n_real:] = np.inf
    flat = planes.reshape(-1)
    n_planes_rows, row_len = planes.shape[2], planes.shape[3]
    plane = np.uint64(n_planes_rows * row_len)
    for r in range(u_start, u_start + patch_size - 1):  # all but the last row of the window
        for j in range(width):
            phase, start = _divmod_step(base + j, step)
            off = (phase * channels * n_planes_rows + r + dy) * row_len + start * set_size
            _add_row(colbuf, np.uint64(j * n_pad), n_pad, flat, np.uint64(off), plane, center,
                     r, j)
    box_lanes = box[:n_pad]
    for u in range(u_start, u_stop):
        row_in = u + patch_size - 1
        row_out = u - 1
        box_lanes[:] = 0.0
        for j in range(width):
            phase, start = _divmod_step(base + j, step)
            first = phase * channels * n_planes_rows + dy
            in_off = np.uint64((first + row_in) * row_len + start * set_size)
            out_off = np.uint64((first + row_out) * row_len + start * set_size)
            col_off = np.uint64(j * n_pad)
            if u == u_start:
                _add_row(colbuf, col_off, n_pad, flat, in_off, plane, center, row_in, j)
            elif channels == 3:
                _slide_rgb(colbuf, col_off, n_pad, flat, in_off, out_off, plane,
                           center[0, row_in, j], center[1, row_in, j], center[2, row_in, j],
                           center[0, row_out, j], center[1, row_out, j], center[2, row_out, j])
            else:
                for c in range(channels):
                    shift = np.uint64(c) * plane
                    _slide_channel(colbuf, col_off, n_pad, flat, in_off + shift,
                                   out_off + shift, center[c, row_in, j], center[c, row_out, j])
            # colsum[width] stays zero: the "leaving" column of the first p columns
            old_off = np.uint64((j - patch_size if j >= patch_size else width) * n_pad)
            v = j - patch_size + 1
            if v < 0:  # the box is still filling: nothing to compare yet
                _slide_box(box_lanes, colbuf, col_off, old_off, NO_MATCH)
                continue
            # candidates inside the frame: 0 <= v + dx_lo + step * k < n_cols
            k_lo = max(0, -_floordiv(v + dx_lo, step))
            k_hi = min(n_dx, _floordiv(n_cols - 1 - v - dx_lo, step) + 1)
            if k_lo == 0 and k_hi == n_dx:
                hit = _slide_box(box_lanes, colbuf, col_off, old_off, best_dist[u, v])
            else:
                _slide_box(box_lanes, colbuf, col_off, old_off, NO_MATCH)
                hit = k_lo < k_hi and _any_below(box_lanes, k_lo * set_size, k_hi * set_size,
                                                 best_dist[u, v])
            if hit:  # rare once the first items are done
                _update_best(box_lanes, ids, k_lo, k_hi, best_dist, best_index, u, v, dy, dx_lo,
                             step)


@nb.njit(cache=True, nogil=True)
def _update_best(box, ids, k_lo, k_hi, best_dist, best_index, u, v, dy, dx_lo, step):
    """The scalar update of (u, v)'s best match from the lanes of k_lo <= k < k_hi: the
    first lowest in the order (frame of the set, then k) wins."""
    set_size = ids.size
    for i in range(set_size):
        for k in range(k_lo, k_hi):
            value = box[k * set_size + i]
            if value < best_dist[u, v]:
                best_dist[u, v] = value
                best_index[u, v, 0] = ids[i]
                best_index[u, v, 1] = dy
                best_index[u, v, 2] = dx_lo + step * k


@nb.njit(cache=True, parallel=True)
def search_items(center, planes, frame_ids, items, step, guard, patch_size, bounds):
    """Exact nearest neighbour of every query window among the candidates of ``items``.

    Parameters
    ----------
    center : float32 [C, He, We]
        The mirror-extended query frame (He = H + 2(p - 1), We likewise).
    planes : float32 [S, step, C, He, Wp * set_size]
        The other extended frames in S sets of set_size, each frame with ``guard`` zero columns on
        both sides, split by column phase and interleaved within its set:
        ``planes[s, q, c, row, m * set_size + i]`` is frame i of set s at guarded column
        ``m * step + q``, so candidates ``step`` columns apart are adjacent in memory, and
        the frames of a set side by side.
    frame_ids : int64 [S, set_size]
        Index within the burst of each frame (reported as t).
    items : int64 [n, 4]
        (s, dy, dx_lo, n_dx) in search order: candidates of the frames of set s at vertical
        shift dy and horizontal shifts dx_lo + step * k for k < n_dx. ``guard`` >= every
        |dx|, counting the k up to (padded_lanes(n_dx * set_size) - 1) // set_size that are
        computed and never chosen.
    step, guard, patch_size : int
    bounds : int64 [n_chunks + 1]
        Items bounds[i]:bounds[i + 1] form chunk i (run in parallel); the result does not
        depend on the chunking.

    Returns
    -------
    best_dist : float32 [He - p + 1, We - p + 1]
    best_index : int16 [He - p + 1, We - p + 1, 3]
        (t, dy, dx) of the nearest candidate; ties go to the first item, then the first frame
        of its set, then the smallest k.
    """
    _, height, width = center.shape
    n_rows = height - patch_size + 1
    n_cols = width - patch_size + 1
    n_chunks = bounds.size - 1
    set_size = frame_ids.shape[1]
    max_lanes = LANES
    for i in range(items.shape[0]):
        max_lanes = max(max_lanes, padded_lanes(items[i, 3] * set_size))
    chunk_dist = np.full((n_chunks, n_rows, n_cols), NO_MATCH, dtype=np.float32)
    chunk_index = np.zeros((n_chunks, n_rows, n_cols, 3), dtype=np.int16)
    for ci in nb.prange(n_chunks):
        buffer = np.zeros((width + 1) * max_lanes, dtype=np.float32)
        box_buffer = np.zeros(max_lanes, dtype=np.float32)
        for item in range(bounds[ci], bounds[ci + 1]):
            s, dy, dx_lo, n_dx = items[item, 0], items[item, 1], items[item, 2], items[item, 3]
            _sweep_item(center, planes[s], frame_ids[s], dy, dx_lo, n_dx, step, guard,
                        patch_size, buffer, box_buffer, chunk_dist[ci], chunk_index[ci])
    best_dist = chunk_dist[0].copy()
    best_index = chunk_index[0].copy()
    for ci in range(1, n_chunks):  # chunks hold consecutive items: strict < keeps the first
        for u in range(n_rows):
            for v in range(n_cols):
                if chunk_dist[ci, u, v] < best_dist[u, v]:
                    best_dist[u, v] = chunk_dist[ci, u, v]
                    for q in range(3):
                        best_index[u, v, q] = chunk_index[ci, u, v, q]
    return best_dist, best_index
