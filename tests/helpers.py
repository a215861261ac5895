"""Helpers shared by the integration and reliability tests (tests/ is on sys.path)."""

import numpy as np
import zarr


def write_frames(folder, frames):
    import imagecodecs

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        data = np.round(np.clip(frame, 0, 1) * 65535).astype(np.uint16)
        (folder / f"f{i}.png").write_bytes(imagecodecs.png_encode(data))


def arrays(path):
    """Every array of a store, by name."""
    group = zarr.open_group(str(path), mode="r")
    out = {}

    def walk(node, prefix=""):
        for name, child in node.members():
            if isinstance(child, zarr.Group):
                walk(child, f"{prefix}{name}/")
            else:
                out[prefix + name] = child[...]
    walk(group)
    return out


def assert_same_store(a, b):
    left, right = arrays(a), arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)
    attrs_a = zarr.open_group(str(a), mode="r").attrs.asdict()
    attrs_b = zarr.open_group(str(b), mode="r").attrs.asdict()
    for key in ("filter", "counts", "fingerprint", "status"):
        assert attrs_a[key] == attrs_b[key], key
