"""Training precision: bfloat16 autocast on the forward pass, float32 weights (issue 16.4)."""

import pytest
import torch

from pcst_train.checkpoints import read_checkpoint
from pcst_train.loop import resolve_precision
from pcst_train.train import TrainConfig, train

pytestmark = pytest.mark.slow


def test_auto_precision_follows_the_hardware():
    cpu = torch.device("cpu")
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert resolve_precision("auto", cpu) == ("bfloat16" if native else "float32")
    assert resolve_precision("float32", cpu) == "float32"
    assert resolve_precision("auto", torch.device("cuda")) == "float32"  # measured slower there
    assert resolve_precision("bfloat16", torch.device("cuda")) == "bfloat16"


def test_bfloat16_training_keeps_float32_weights_and_ends_alike(held_out_store, tmp_path):
    results = {}
    for precision in ("float32", "bfloat16"):
        config = TrainConfig(steps=12, batch_size=8, lr=3e-4, validate_every=6,
                             precision=precision)
        results[precision] = train(held_out_store, tmp_path / precision, config, progress=False)
    state = read_checkpoint(tmp_path / "bfloat16" / "final.pt")["state_dict"]
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())
    after32, after16 = (results[p]["after"]["val_loss"] for p in ("float32", "bfloat16"))
    assert after16 != after32  # bfloat16 did run
    assert abs(after16 - after32) < 0.02 * after32, (after32, after16)
