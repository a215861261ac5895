"""The training loss: the per-pixel filter's residual energy against a plain NumPy reference
(borders included), the mask's rule, the absolute and squared losses it gives, on a real store
that the pixels it drops are where the crafted targets' content is wrong, and that the absolute
error learns the clean value where camera-like noise (symmetric before a monotone curve) has a
mean that is not the clean value."""

import numpy as np
import pytest
import torch

from pcst_train.losses import FilteredLoss, pixel_filter_mask, residual_energy


def energy_reference(inputs, targets, window):
    """Plain loops: the mean of the channel-summed squared residual over the pixels of the
    window that lie inside the tile."""
    squared = ((targets - inputs) ** 2).sum(1)
    n, h, w = squared.shape
    half = window // 2
    out = np.zeros((n, 1, h, w))
    for b in range(n):
        for u in range(h):
            for v in range(w):
                values = [squared[b, u + du, v + dv]
                          for du in range(-half, half + 1) for dv in range(-half, half + 1)
                          if 0 <= u + du < h and 0 <= v + dv < w]
                out[b, 0, u, v] = sum(values) / len(values)
    return out


@pytest.mark.parametrize("window", [1, 3, 7])
def test_residual_energy_matches_plain_loops_borders_included(rng, window):
    inputs = rng.random((2, 3, 9, 11))
    targets = rng.random((2, 3, 9, 11))
    got = residual_energy(torch.from_numpy(inputs), torch.from_numpy(targets), window)
    np.testing.assert_allclose(got.numpy(), energy_reference(inputs, targets, window),
                               rtol=1e-10, atol=1e-12)


def test_the_mask_keeps_what_is_at_most_factor_times_the_tiles_median(rng):
    inputs = torch.from_numpy(rng.random((3, 1, 16, 16)))
    targets = inputs + torch.from_numpy(0.05 * rng.standard_normal((3, 1, 16, 16)))
    targets[1, :, 4:9, 4:9] += 0.5  # a wrong patch in the second tile only
    energy = residual_energy(inputs, targets)
    for factor in (1.0, 2.0, 4.0):
        keep = pixel_filter_mask(inputs, targets, factor)
        for b in range(3):
            median = np.sort(energy[b].numpy().ravel())[(16 * 16 - 1) // 2]  # the lower median
            np.testing.assert_array_equal(keep[b].numpy(), energy[b].numpy() <= factor * median)
    keep = pixel_filter_mask(inputs, targets, 2.0)
    assert not keep[1, 0, 5:8, 5:8].any()  # the wrong patch goes
    assert keep[0].float().mean() > 0.85 and keep[2].float().mean() > 0.85  # noise stays


def test_identical_tiles_keep_every_pixel():
    x = torch.rand(2, 3, 8, 8)
    assert pixel_filter_mask(x, x.clone(), 2.0).all()


@pytest.mark.parametrize("loss, error", [("mse", np.square), ("mae", np.abs)])
def test_the_loss_is_the_mean_error_over_the_kept_pixels(rng, loss, error):
    inputs = torch.from_numpy(rng.random((2, 3, 12, 12)))
    targets = inputs + torch.from_numpy(0.1 * rng.standard_normal((2, 3, 12, 12)))
    targets[0, :, :4, :4] += 1.0
    outputs = torch.from_numpy(rng.random((2, 3, 12, 12)))
    difference = (outputs - targets).numpy()
    assert np.isclose(FilteredLoss(0.0, loss=loss)(outputs, targets, inputs).item(),
                      error(difference).mean())
    keep = pixel_filter_mask(inputs, targets, 2.0).expand_as(targets).numpy()
    assert 0.5 < keep.mean() < 1.0
    assert np.isclose(FilteredLoss(2.0, loss=loss)(outputs, targets, inputs).item(),
                      error(difference[keep]).mean())
    with pytest.raises(ValueError, match="factor"):
        FilteredLoss(-1.0, loss=loss)
    with pytest.raises(ValueError, match="unknown loss 'l3'"):
        FilteredLoss(2.0, loss="l3")


def test_the_absolute_error_learns_the_clean_value_under_camera_noise(demo_frames):
    """One value per pixel fitted by Adam to 256 noisy copies of a real frame's crop, as a
    network learns from noisy targets: the camera model's noise (symmetric in linear light,
    then the colour matrix, the sRGB curve and the clip at black) has a mean given the image
    that is not 0, so the squared error learns clean + that mean (the copies' mean, against
    the clean crop) and the absolute error their median, which is the clean value."""
    from pcst_prep.noise import CameraPipeline

    clean = demo_frames[:1, 100:132, :32]
    noise = CameraPipeline(shot=0.02, read=0.02)
    noisy = torch.from_numpy(np.stack([noise(clean, np.random.default_rng(seed))[0]
                                       for seed in range(256)]).transpose(0, 3, 1, 2))
    truth = torch.from_numpy(clean[0].transpose(2, 0, 1))[None]
    mean = noisy.mean(0, keepdim=True)
    errors = {}
    for loss in ("mse", "mae"):
        fitted = torch.nn.Parameter(mean.clone())
        optimiser = torch.optim.Adam([fitted], lr=3e-3)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, [200, 400, 500], 0.3)
        draw = torch.Generator().manual_seed(0)
        for _ in range(600):
            batch = noisy[torch.randint(0, len(noisy), (32,), generator=draw)]
            optimiser.zero_grad()
            FilteredLoss(0.0, loss=loss)(fitted.expand_as(batch), batch, batch).backward()
            optimiser.step()
            schedule.step()
        errors[loss] = float(((fitted.detach() - truth) ** 2).mean())
    bias = float(((mean - truth) ** 2).mean())  # 4e-4 when written; the mean's variance 5e-5
    median = float(((noisy.median(0, keepdim=True).values - truth) ** 2).mean())  # 7e-5
    assert median < 0.3 * bias
    assert errors["mse"] > 0.7 * bias  # the squared error stays near the copies' mean
    assert errors["mae"] < 0.3 * errors["mse"]  # the absolute error comes near the clean crop


def test_on_a_real_store_the_dropped_pixels_are_where_the_targets_content_is_wrong(tiny_store):
    """The tiny store's bursts (real demo frames, synthetic noise): the content error of a
    crafted target (the same nnf applied to the clean frames, against the clean center) is far
    larger on the pixels the filter drops than on those it keeps."""
    from pcst_prep import store as zstore
    from pcst_prep.craft import craft_region, extend_frames
    from pcst_train.data import BurstTiles

    group = zstore.open_store(tiny_store)
    table = zstore.burst_table(group)
    r_center = zstore.read_filter(group).r_center  # as training takes the targets
    kept, dropped = [], []
    for burst in range(len(table["tiles"]) - 1):
        tiles = BurstTiles(group, table, burst, clean=True)
        frames = zstore.read_frames(group, int(table["source"][burst]), table["frames"][burst],
                                    noisy=False)
        clean_burst = extend_frames(frames, tiles.patch_size)
        for row in tiles.rows:
            offset = tuple(int(o) for o in tiles.offsets(row)[0])
            target, noisy = tiles.target(row, offset) - r_center, tiles.input(row)
            content = craft_region(clean_burst, tiles.nnf, tiles.patch_size, offset,
                                   *tiles._region(row)) - tiles.clean(row)
            as_tensor = lambda a: torch.from_numpy(a.transpose(2, 0, 1))[None]  # noqa: E731
            keep = pixel_filter_mask(as_tensor(noisy), as_tensor(target), 2.0)[0, 0].numpy()
            error = (content ** 2).sum(-1)
            kept.append(error[keep])
            dropped.append(error[~keep])
    kept, dropped = np.concatenate(kept), np.concatenate(dropped)
    assert 0.001 < len(dropped) / (len(kept) + len(dropped)) < 0.2
    assert dropped.mean() > 5 * kept.mean()  # 24x when written


def test_pixels_where_target_and_input_agree_do_not_pull_the_threshold_to_zero(rng):
    """A tile half flat (target == input, as in a clipped or letterboxed area) keeps the noisy
    half's ordinary pixels: the median counts only pixels with some energy."""
    inputs = torch.from_numpy(rng.random((1, 3, 24, 24)))
    targets = inputs.clone()
    targets[..., 12:] += torch.from_numpy(0.05 * rng.standard_normal((1, 3, 24, 12)))
    keep = pixel_filter_mask(inputs, targets, 2.0)
    assert keep[..., :9].all()  # windows that see no residual at all
    assert keep[..., 15:].float().mean() > 0.85


@pytest.mark.parametrize("factor, window", [(0.5, 7), (-1.0, 7), (2.0, 4), (2.0, 0)])
def test_bad_factors_and_windows_are_refused(factor, window):
    with pytest.raises(ValueError):
        FilteredLoss(factor, window)
