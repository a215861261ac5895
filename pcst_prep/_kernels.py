"""Numba kernels for exhaustive block matching. No I/O, no defaults: plain arrays in and out.

Layout: frames are channel-planar and mirror-extended, ``frame[c, row, col]``. A query is the
p x p window of the centre frame with top-left (u, v); a candidate is the window of frame t
with top-left (u + dy, v + dx).

The work is split into items (f, dy, dx_lo, n_dx): the candidates of frame f at vertical shift
dy and horizontal shifts dx = dx_lo + step * k, k < n_dx (step 1 for a dense window; larger for
the reference's coarse grid). One item sweeps the query rows u with running sums:

- ``colsum[j, k]``: sum over rows u..u+p-1 of the squared difference at centre column j for
  the k-th dx. Moving down one row adds the entering row and subtracts the leaving one.
- ``box[k]``: slides along the columns (fused with the row update, so the column sums it
  reads are still in L1 cache) and holds the p x p distance of query (u, v) to its candidate
  at (u + dy, v + dx_lo + step * k).

Every inner loop runs over k and starts at index 0 of a contiguous slice, which lets LLVM's
loop vectoriser emit SIMD code (an index that might be negative makes Numba emit wrap-around
code per element). The other frames carry ``guard`` >= max |dx| zero columns on each side so
that every k reads valid memory, and are split into ``step`` column phases so that candidates
``step`` columns apart are adjacent; lanes whose candidate falls outside the frame are never
chosen.

Items are visited in search order: the caller lists frames nearest first and dy = 0, -1, 1,
-2, 2, ..., so that good matches are found early and the scalar update of the best match
(taken only when some lane beats it) stays rare. Each item is computed on its own, so the
value computed for a candidate does not depend on the thread count, and a strict ``<`` gives
ties to the first candidate in search order (then the smallest dx), whatever the number of
threads.
"""

import numba as nb
import numpy as np

# "No match yet". Finite, so that comparisons stay plain float comparisons.
NO_MATCH = np.float32(3.0e38)
# Lanes (candidates of one item) are computed in multiples of this: a trip count that is not a
# multiple of the vector width leaves a scalar remainder loop (75 lanes: about 20% slower
# than 80, measured single-threaded on the inner row-slide loop).
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


@nb.njit(cache=True, nogil=True)
def _slide_box(box, col_in, col_out, bound):
    """box += col_in - col_out; returns True if any new box value is below ``bound``."""
    hit = False
    for k in range(box.size):
        value = box[k] + (col_in[k] - col_out[k])
        box[k] = value
        hit |= value < bound
    return hit


@nb.njit(cache=True, nogil=True, inline="always")
def _floordiv(a, step):
    """a // step, without an integer division when step is 1 (the dense search): the sweep
    needs up to four per column step, each about as slow as a quarter of its vector work."""
    return a if step == 1 else a // step


@nb.njit(cache=True, nogil=True, inline="always")
def _divmod_step(a, step):
    """(a % step, a // step), without divisions when step is 1 (see _floordiv)."""
    return (0, a) if step == 1 else (a % step, a // step)


@nb.njit(cache=True, nogil=True)
def _slide_rgb_flat(colbuf, col_off, n, flat, in_off, out_off, plane, y0, y1, y2, z0, z1, z2):
    """The hot loop: _slide_column_rgb on flat arrays with unsigned offsets. Array slices cost
    a reference-counted struct each, and the kernel would take six per column step (0.29 vs
    0.24 ns per lane measured on this loop alone); unsigned offsets spare the wrap-around code
    that a possibly negative index brings. Same operations in the same order as
    _slide_column_rgb."""
    for k in range(n):
        kk = np.uint64(k)
        i = in_off + kk
        o = out_off + kk
        e0, e1, e2 = y0 - flat[i], y1 - flat[i + plane], y2 - flat[i + plane + plane]
        f0, f1, f2 = z0 - flat[o], z1 - flat[o + plane], z2 - flat[o + plane + plane]
        c = col_off + kk
        colbuf[c] += (e0 * e0 + e1 * e1 + e2 * e2) - (f0 * f0 + f1 * f1 + f2 * f2)


@nb.njit(cache=True, nogil=True)
def _slide_box_flat(box, colbuf, col_off, old_off, bound):
    """_slide_box with the two columns given as unsigned offsets into colbuf."""
    hit = False
    for k in range(box.size):
        kk = np.uint64(k)
        value = box[k] + (colbuf[col_off + kk] - colbuf[old_off + kk])
        box[k] = value
        hit |= value < bound
    return hit


@nb.njit(cache=True, nogil=True)
def _slide_column_rgb(col, centre, frame, row_in, row_out, dy, j, start):
    """The row slide of one column for 3 channels in a single pass over col (the general
    loop makes one pass per channel); RGB is the common case and this is its hot loop."""
    n = col.size
    a0 = frame[0, row_in + dy, start:start + n]
    a1 = frame[1, row_in + dy, start:start + n]
    a2 = frame[2, row_in + dy, start:start + n]
    b0 = frame[0, row_out + dy, start:start + n]
    b1 = frame[1, row_out + dy, start:start + n]
    b2 = frame[2, row_out + dy, start:start + n]
    y0, y1, y2 = centre[0, row_in, j], centre[1, row_in, j], centre[2, row_in, j]
    z0, z1, z2 = centre[0, row_out, j], centre[1, row_out, j], centre[2, row_out, j]
    for k in range(n):
        e0, e1, e2 = y0 - a0[k], y1 - a1[k], y2 - a2[k]
        f0, f1, f2 = z0 - b0[k], z1 - b1[k], z2 - b2[k]
        col[k] += (e0 * e0 + e1 * e1 + e2 * e2) - (f0 * f0 + f1 * f1 + f2 * f2)


@nb.njit(cache=True, nogil=True)
def _sweep_item(centre, planes, t, dy, dx_lo, n_real, step, guard, patch_size, colsum, colbuf,
                box, best_dist, best_index):
    """Update best_dist/best_index with the candidates of frame t at vertical shift dy and
    horizontal shifts dx_lo + step * k, k < n_real. colsum has n_dx >= n_real lanes (a
    multiple of LANES: no scalar remainder loops); the extra lanes start at +inf, turn NaN
    and so never compare below a bound."""
    channels, _, width = centre.shape
    n_rows, n_cols = best_dist.shape
    n_dx = colsum.shape[1]
    base = guard + dx_lo  # guarded frame column of (centre column 0, k = 0)
    u_start = max(0, -dy)
    u_stop = min(n_rows, n_rows - dy)
    if u_start >= u_stop:
        return
    colsum[:, :n_real] = 0.0
    colsum[:, n_real:] = np.inf
    for r in range(u_start, u_start + patch_size - 1):  # all but the last row of the window
        for j in range(width):
            col = colsum[j]
            phase, start = _divmod_step(base + j, step)
            for c in range(channels):
                y = centre[c, r, j]
                x = planes[phase, c, r + dy, start:start + n_dx]
                for k in range(n_dx):
                    a = y - x[k]
                    col[k] += a * a
    flat = planes.reshape(-1)  # colbuf is colsum's memory, flat likewise for planes
    n_planes_rows, n_planes_cols = planes.shape[2], planes.shape[3]
    plane = np.uint64(n_planes_rows * n_planes_cols)
    for u in range(u_start, u_stop):
        row_in = u + patch_size - 1
        row_out = u - 1
        box[:] = 0.0
        for j in range(width):
            phase, start = _divmod_step(base + j, step)
            v = j - patch_size + 1
            slid = u > u_start and channels == 3 and v >= 0
            if slid:  # the hot path, without views
                row_base = phase * channels * n_planes_rows
                _slide_rgb_flat(colbuf, np.uint64(j * n_dx), n_dx, flat,
                                np.uint64((row_base + row_in + dy) * n_planes_cols + start),
                                np.uint64((row_base + row_out + dy) * n_planes_cols + start),
                                plane, centre[0, row_in, j], centre[1, row_in, j],
                                centre[2, row_in, j], centre[0, row_out, j],
                                centre[1, row_out, j], centre[2, row_out, j])
                k_lo = max(0, -_floordiv(v + dx_lo, step))
                k_hi = min(n_real, _floordiv(n_cols - 1 - v - dx_lo, step) + 1)
                if k_lo == 0 and k_hi == n_real:
                    old_off = (j - patch_size if j >= patch_size else width) * n_dx
                    if _slide_box_flat(box, colbuf, np.uint64(j * n_dx), np.uint64(old_off),
                                       best_dist[u, v]):
                        _update_best(box, k_lo, k_hi, best_dist, best_index, u, v, t, dy,
                                     dx_lo, step)
                    continue
            col = colsum[j]
            frame = planes[phase]
            # (a slid column has only its box left to do: its border lanes, below)
            if not slid and u > u_start and channels == 3:
                _slide_column_rgb(col, centre, frame, row_in, row_out, dy, j, start)
            elif not slid:
                for c in range(channels):
                    y_in = centre[c, row_in, j]
                    x_in = frame[c, row_in + dy, start:start + n_dx]
                    if u == u_start:
                        for k in range(n_dx):
                            a = y_in - x_in[k]
                            col[k] += a * a
                    else:
                        y_out = centre[c, row_out, j]
                        x_out = frame[c, row_out + dy, start:start + n_dx]
                        for k in range(n_dx):
                            a = y_in - x_in[k]
                            b = y_out - x_out[k]
                            col[k] += a * a - b * b
            # colsum[width] stays zero: the "leaving" column of the first p columns
            old = colsum[j - patch_size] if j >= patch_size else colsum[width]
            # lanes whose candidate lies inside the frame: 0 <= v + dx_lo + step * k < n_cols
            k_lo = max(0, -_floordiv(v + dx_lo, step))
            k_hi = min(n_real, _floordiv(n_cols - 1 - v - dx_lo, step) + 1)
            if v >= 0 and k_lo == 0 and k_hi == n_real:
                hit = _slide_box(box, col, old, best_dist[u, v])
            else:
                _slide_box(box, col, old, NO_MATCH)
                hit = v >= 0 and k_lo < k_hi and _any_below(box, k_lo, k_hi, best_dist[u, v])
            if hit:  # rare once the first items are done
                _update_best(box, k_lo, k_hi, best_dist, best_index, u, v, t, dy, dx_lo, step)


@nb.njit(cache=True, nogil=True)
def _update_best(box, k_lo, k_hi, best_dist, best_index, u, v, t, dy, dx_lo, step):
    """The scalar update of (u, v)'s best match from lanes k_lo:k_hi (first lowest wins)."""
    for k in range(k_lo, k_hi):
        if box[k] < best_dist[u, v]:
            best_dist[u, v] = box[k]
            best_index[u, v, 0] = t
            best_index[u, v, 1] = dy
            best_index[u, v, 2] = dx_lo + step * k


@nb.njit(cache=True, parallel=True)
def search_items(centre, planes, frame_ids, items, step, guard, patch_size, bounds):
    """Exact nearest neighbour of every query window among the candidates of ``items``.

    Parameters
    ----------
    centre : float32 [C, He, We]
        The mirror-extended query frame (He = H + 2(p - 1), We likewise).
    planes : float32 [F, step, C, He, Wp]
        The other extended frames in search order, each with ``guard`` zero columns on both
        sides, split by column phase: ``planes[f, q, c, row, m]`` is guarded column
        ``m * step + q``, so candidates ``step`` columns apart are adjacent in memory.
    frame_ids : int64 [F]
        Index within the burst of each frame (reported as t).
    items : int64 [n, 4]
        (f, dy, dx_lo, n_dx) in search order: candidates of frame f at vertical shift dy and
        horizontal shifts dx_lo + step * k for k < n_dx. ``guard`` >= every |dx|, counting
        the lanes up to ``padded_lanes(n_dx)`` that are computed and never chosen.
    step, guard, patch_size : int
    bounds : int64 [n_chunks + 1]
        Items bounds[i]:bounds[i + 1] form chunk i (run in parallel); the result does not
        depend on the chunking.

    Returns
    -------
    best_dist : float32 [He - p + 1, We - p + 1]
    best_index : int16 [He - p + 1, We - p + 1, 3]
        (t, dy, dx) of the nearest candidate; ties go to the first item, then the smallest k.
    """
    _, height, width = centre.shape
    n_rows = height - patch_size + 1
    n_cols = width - patch_size + 1
    n_chunks = bounds.size - 1
    max_dx = LANES
    for i in range(items.shape[0]):
        max_dx = max(max_dx, padded_lanes(items[i, 3]))
    chunk_dist = np.full((n_chunks, n_rows, n_cols), NO_MATCH, dtype=np.float32)
    chunk_index = np.zeros((n_chunks, n_rows, n_cols, 3), dtype=np.int16)
    for ci in nb.prange(n_chunks):
        buffer = np.zeros((width + 1) * max_dx, dtype=np.float32)
        box_buffer = np.zeros(max_dx, dtype=np.float32)
        for item in range(bounds[ci], bounds[ci + 1]):
            f, dy, dx_lo, n_dx = items[item, 0], items[item, 1], items[item, 2], items[item, 3]
            n_pad = padded_lanes(n_dx)
            colsum = buffer[:(width + 1) * n_pad].reshape((width + 1, n_pad))
            _sweep_item(centre, planes[f], frame_ids[f], dy, dx_lo, n_dx, step, guard,
                        patch_size, colsum, buffer, box_buffer[:n_pad], chunk_dist[ci],
                        chunk_index[ci])
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


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _run_sums(y_values, target):
    """sum(target) and sum(y * target) of two equal-length runs, accumulated in float64.

    Reassociation lets LLVM vectorise the two reductions; it changes rounding only at the
    float64 level and is the same for every call, so results stay deterministic."""
    sum_t = 0.0
    sum_yt = 0.0
    for i in range(target.size):
        value = np.float64(target[i])
        sum_t += value
        sum_yt += np.float64(y_values[i]) * value
    return sum_t, sum_yt


@nb.njit(cache=True, parallel=True)
def offset_tile_stats(extended, center, nnf, patch_size, offsets, tile_rows, tile_cols,
                      tile_size):
    """s_yr and mean(r) of every (offset, tile) pair, reading target pixels straight from
    their matches.

    Along a tile row, the pixels of one patch form a run whose target is one contiguous run of
    the matched frame (frames are [row, col * C + c]), so each run is two vector reductions.

    Parameters
    ----------
    extended : float32 [M, H + 2P, (W + 2P) * C]
        Mirror-extended burst with columns and channels merged (P = patch_size - 1).
    center : int
    nnf : int16 [H + P, W + P, 3]
    patch_size : int
    offsets : int64 [K, 2]
        (k, l) per target.
    tile_rows, tile_cols : int64 [n_i], [n_j]
        Top-left coordinates of the tiles in the original frame.
    tile_size : int

    Returns
    -------
    s_yr, r_mean : float64 [K, n_i, n_j]
    """
    pad = patch_size - 1
    channels = extended.shape[2] // (nnf.shape[1] + pad)
    n_offsets = offsets.shape[0]
    n_i = tile_rows.shape[0]
    n_j = tile_cols.shape[0]
    count = tile_size * tile_size * channels
    # Offset-independent sums of y and y^2 per tile.
    sum_y = np.zeros((n_i, n_j))
    sum_yy = np.zeros((n_i, n_j))
    for i in range(n_i):
        for j in range(n_j):
            for y in range(tile_rows[i], tile_rows[i] + tile_size):
                row = extended[center, y + pad, (tile_cols[j] + pad) * channels:
                               (tile_cols[j] + pad + tile_size) * channels]
                a, b = _run_sums(row, row)
                sum_y[i, j] += a
                sum_yy[i, j] += b
    s_yr = np.empty((n_offsets, n_i, n_j))
    r_mean = np.empty((n_offsets, n_i, n_j))
    for o in nb.prange(n_offsets):
        k = offsets[o, 0]
        l = offsets[o, 1]
        for i in range(n_i):
            for j in range(n_j):
                sum_t = 0.0
                sum_yt = 0.0
                x_stop = tile_cols[j] + tile_size
                for y in range(tile_rows[i], tile_rows[i] + tile_size):
                    a = y + pad - (y - k) % patch_size
                    x = tile_cols[j]
                    while x < x_stop:
                        phase = (x - l) % patch_size
                        run = min(patch_size - phase, x_stop - x)
                        b = x + pad - phase
                        t = nnf[a, b, 0]
                        src_row = y + pad + nnf[a, b, 1]
                        src_col = x + pad + nnf[a, b, 2]
                        st, syt = _run_sums(
                            extended[center, y + pad, (x + pad) * channels:
                                     (x + pad + run) * channels],
                            extended[t, src_row, src_col * channels:(src_col + run) * channels])
                        sum_t += st
                        sum_yt += syt
                        x += run
                mean_y = sum_y[i, j] / count
                mean_r = (sum_t - sum_y[i, j]) / count
                r_mean[o, i, j] = mean_r
                s_yr[o, i, j] = (sum_yt - sum_yy[i, j]) / count - mean_y * mean_r
    return s_yr, r_mean
