"""Reading sequences and cutting bursts: formats, bit depths, natural order, bad input."""

import imagecodecs
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from pcst_prep import InputError
from pcst_prep.bursts import (
    cut_bursts, find_sequences, image_dtype, natural_key, probe_sequence, read_frames, read_image,
    read_sequence,
)


def write_png(path, array):
    path.write_bytes(imagecodecs.png_encode(array))


def test_natural_order_puts_frame2_before_frame10(tmp_path, rng):
    for i in (10, 2, 1, 33):
        write_png(tmp_path / f"frame{i}.png", np.full((8, 8, 3), i, np.uint8))
    (seq,) = find_sequences(tmp_path)
    assert [p.name for p in seq.frames] == ["frame1.png", "frame2.png", "frame10.png", "frame33.png"]
    frames = read_sequence(tmp_path)
    assert np.allclose(frames[:, 0, 0, 0] * 255, [1, 2, 10, 33])
    assert natural_key("a2b") < natural_key("a10b")


def test_16bit_rgb_png_round_trips_exactly(tmp_path, rng):
    original = rng.integers(0, 65536, size=(17, 23, 3), dtype=np.uint16)
    write_png(tmp_path / "x.png", original)
    frame = read_image(tmp_path / "x.png")
    assert frame.dtype == np.float32 and frame.shape == (17, 23, 3)
    assert np.array_equal(np.round(frame.astype(np.float64) * 65535).astype(np.uint16), original)
    # values that 8 bits cannot hold survive
    assert len(np.unique(original)) > 256 and len(np.unique(frame)) > 256


@pytest.mark.parametrize("layout", ["gray", "gray_alpha", "rgba"])
def test_channels_and_alpha(tmp_path, rng, layout):
    shape = {"gray": (9, 11), "gray_alpha": (9, 11, 2), "rgba": (9, 11, 4)}[layout]
    array = rng.integers(0, 256, size=shape, dtype=np.uint8)
    write_png(tmp_path / "x.png", array)
    frame = read_image(tmp_path / "x.png")
    expected = array[..., None] if array.ndim == 2 else array[..., :-1]
    assert frame.shape == expected.shape
    assert np.array_equal(np.round(frame * 255).astype(np.uint8), expected)


def test_tiff_16bit_and_float(tmp_path, rng):
    a16 = rng.integers(0, 65536, size=(10, 12, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", a16)
    assert np.array_equal(np.round(read_image(tmp_path / "a.tif") * 65535.0).astype(np.uint16), a16)
    af = rng.random((10, 12), dtype=np.float32)
    tifffile.imwrite(tmp_path / "b.tiff", af)
    assert np.array_equal(read_image(tmp_path / "b.tiff")[..., 0], af)


def test_float_tiff_with_nan_is_refused(tmp_path):
    bad = np.zeros((6, 6), np.float32)
    bad[2, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", bad)
    with pytest.raises(InputError, match=r"nan\.tif: contains NaN"):
        read_image(tmp_path / "nan.tif")


def test_jpeg(tmp_path, demo_frames):
    frame8 = np.round(demo_frames[0] * 255).astype(np.uint8)
    (tmp_path / "f.jpg").write_bytes(imagecodecs.jpeg8_encode(frame8, level=95))
    decoded = read_image(tmp_path / "f.jpg")
    assert decoded.shape == frame8.shape
    assert np.abs(decoded * 255 - frame8).mean() < 3  # lossy, but the same picture


def test_video_frames_match_the_frames_it_was_made_from(tmp_path, demo_frames):
    frames8 = np.round(demo_frames[:9] * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "clip.mp4", frames8, plugin="pyav", codec="libx264", fps=25,
                out_pixel_format="yuv444p")
    (seq,) = find_sequences(tmp_path)
    info = probe_sequence(seq)
    assert (info.n_frames, info.height, info.width, info.channels) == (9, 180, 320, 3)
    burst = read_frames(seq, [3, 4, 5])
    assert burst.shape == (3, 180, 320, 3) and burst.dtype == np.float32
    # lossy codec: each decoded frame is closest to the frame it was made from
    error = np.abs(burst[:, None] - demo_frames[None, :9]).mean(axis=(2, 3, 4))
    assert list(error.argmin(axis=1)) == [3, 4, 5]
    assert error.min(axis=1).max() < 0.03


def test_find_sequences_walks_folders_and_videos(tmp_path, rng):
    for name in ("b", "a/inner"):
        d = tmp_path / name
        d.mkdir(parents=True)
        for i in range(3):
            write_png(d / f"{i}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "c.mkv").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored")
    found = find_sequences(tmp_path)
    assert [s.path.relative_to(tmp_path).as_posix() for s in found] == ["a/inner", "b", "c.mkv"]
    assert found[2].is_video and not found[0].is_video


@pytest.mark.parametrize(
    "n_frames, length, step, stride, replicate, expected",
    [
        (21, 7, 1, None, False, [((0, 1, 2, 3, 4, 5, 6), 3), ((7, 8, 9, 10, 11, 12, 13), 3),
                                 ((14, 15, 16, 17, 18, 19, 20), 3)]),
        (7, 3, 2, 2, False, [((0, 2, 4), 1), ((2, 4, 6), 1)]),
        (3, 3, 1, None, True, [((0, 1, 2), 0), ((0, 1, 2), 1), ((0, 1, 2), 2)]),
        (6, 7, 1, None, False, []),
    ],
)
def test_cut_bursts(n_frames, length, step, stride, replicate, expected):
    bursts = cut_bursts(n_frames, length, step, stride, replicate)
    assert [(b.frame_indices, b.center) for b in bursts] == expected


def test_even_burst_length_is_refused():
    with pytest.raises(InputError, match="odd"):
        cut_bursts(10, burst_length=4)


# --- bad input: one clear error naming the file ----------------------------------------


PNG_LAYOUTS = {  # name: (shape, dtype, channels kept)
    "gray8": ((9, 11), np.uint8, 1), "gray16": ((9, 11), np.uint16, 1),
    "gray_alpha8": ((9, 11, 2), np.uint8, 1), "rgb8": ((9, 11, 3), np.uint8, 3),
    "rgb16": ((9, 11, 3), np.uint16, 3), "rgba16": ((9, 11, 4), np.uint16, 3),
}


@pytest.mark.parametrize("layout", sorted(PNG_LAYOUTS))
def test_png_header_probe_agrees_with_the_decoded_frame(tmp_path, rng, layout):
    shape, dtype, channels = PNG_LAYOUTS[layout]
    array = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    for i in range(2):
        write_png(tmp_path / f"{i}.png", array)
    (seq,) = find_sequences(tmp_path)

    info = probe_sequence(seq)
    frame = read_image(seq.frames[0])

    assert (info.height, info.width, info.channels) == (9, 11, channels) == frame.shape
    assert image_dtype(seq.frames[0]) == dtype  # 16-bit RGB too, which Pillow calls 8-bit
    top = np.iinfo(dtype).max
    kept = array[..., None] if array.ndim == 2 else array[..., :channels]
    assert np.array_equal(np.round(frame.astype(np.float64) * top).astype(dtype), kept)


def test_palette_png_probes_as_the_rgb_it_decodes_to(tmp_path, rng):
    from PIL import Image

    rgb = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    (seq,) = find_sequences(tmp_path)

    info = probe_sequence(seq)

    assert (info.height, info.width, info.channels) == read_image(seq.frames[0]).shape
    assert image_dtype(seq.frames[0]) == np.uint8


def test_a_file_that_is_not_a_png_names_the_file(tmp_path, rng):
    write_png(tmp_path / "0.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "1.png").write_bytes(b"this is no image")
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(InputError, match=r"1\.png: not a PNG file \(no PNG signature\)") as err:
        probe_sequence(seq)
    assert "\n" not in str(err.value)


def test_corrupt_png_names_the_file(tmp_path, rng):
    write_png(tmp_path / "0.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(InputError) as err:
        probe_sequence(seq)
    assert "1.png" in str(err.value) and "\n" not in str(err.value)


def test_truncated_png_body_names_the_file(tmp_path, rng):
    good = imagecodecs.png_encode(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    (tmp_path / "t.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"t\.png: cannot decode image"):
        read_image(tmp_path / "t.png")


def test_frames_of_different_sizes(tmp_path, rng):
    write_png(tmp_path / "0.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    write_png(tmp_path / "1.png", rng.integers(0, 255, (8, 9, 3), dtype=np.uint8))
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(InputError, match=r"1\.png: frame is 8x9 but 0\.png is 8x8"):
        probe_sequence(seq)


def test_mixed_channel_counts(tmp_path, rng):
    write_png(tmp_path / "0.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    write_png(tmp_path / "1.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(InputError, match=r"1\.png: .*mixed channel counts"):
        probe_sequence(seq)


def test_unreadable_video_names_the_file(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(InputError, match=r"broken\.mp4: cannot read video"):
        probe_sequence(seq)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        find_sequences(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no video file or folder of frames"):
        find_sequences(tmp_path)
