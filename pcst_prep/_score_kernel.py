"""Numba kernel for the tile statistics of every patch-craft target of a burst. No I/O, no
defaults: plain arrays in and out. Used by :func:`pcst_prep.statistics.offset_tile_stats`."""

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _run_sums(flat, y_off, t_off, n):
    """sum(target) and sum(y * target) of the runs flat[t_off:t_off + n] (target) and
    flat[y_off:y_off + n] (y), accumulated in float64.

    Unsigned offsets instead of two array views per run (each a reference-counted struct).
    Reassociation lets LLVM vectorise the two reductions; it changes rounding only at the
    float64 level and is the same for every call, so results stay deterministic."""
    sum_t = 0.0
    sum_yt = 0.0
    for i in range(n):
        k = np.uint64(i)
        value = np.float64(flat[t_off + k])
        sum_t += value
        sum_yt += np.float64(flat[y_off + k]) * value
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
    flat = extended.reshape(-1)
    frame_len = extended.shape[1] * extended.shape[2]
    row_len = extended.shape[2]
    # Offset-independent sums of y and y^2 per tile.
    sum_y = np.zeros((n_i, n_j))
    sum_yy = np.zeros((n_i, n_j))
    for i in range(n_i):
        for j in range(n_j):
            for y in range(tile_rows[i], tile_rows[i] + tile_size):
                row = np.uint64(center * frame_len + (y + pad) * row_len
                                + (tile_cols[j] + pad) * channels)
                a, b = _run_sums(flat, row, row, tile_size * channels)
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
                            flat,
                            np.uint64(center * frame_len + (y + pad) * row_len
                                      + (x + pad) * channels),
                            np.uint64(t * frame_len + src_row * row_len + src_col * channels),
                            run * channels)
                        sum_t += st
                        sum_yt += syt
                        x += run
                mean_y = sum_y[i, j] / count
                mean_r = (sum_t - sum_y[i, j]) / count
                r_mean[o, i, j] = mean_r
                s_yr[o, i, j] = (sum_yt - sum_yy[i, j]) / count - mean_y * mean_r
    return s_yr, r_mean
