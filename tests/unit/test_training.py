"""The training loop's pieces: the lr schedule in steps, evaluation leaving the model as it was."""

import pytest
import torch

from pcst_train.models import build_model
from pcst_train.loop import evaluate_tiles
from pcst_train.train import TrainConfig, _outputs, milestones_in_steps


def test_milestones_scale_with_the_run_length_in_epochs():
    config = TrainConfig(epochs=10, milestones=(5,), steps=100)
    assert milestones_in_steps(config, steps_per_epoch=7) == (100, [50])


def test_milestones_without_steps_are_whole_epochs():
    config = TrainConfig(epochs=10, milestones=(5, 8))
    assert milestones_in_steps(config, steps_per_epoch=7) == (70, [35, 56])


@pytest.mark.parametrize("training", [False, True])
def test_evaluation_leaves_the_model_in_the_callers_mode(training):
    model = build_model("dncnn", channels=1, layers=3, kernels=4).train(training)
    noisy, clean = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
    evaluate_tiles(model, (noisy, clean), "cpu")
    assert model.training is training
    _outputs(model, noisy, "cpu")
    assert model.training is training
