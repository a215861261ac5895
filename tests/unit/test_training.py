"""The training loop's pieces: the lr schedule in steps."""

from pcst_train.train import TrainConfig, milestones_in_steps


def test_milestones_scale_with_the_run_length_in_epochs():
    config = TrainConfig(epochs=10, milestones=(5,), steps=100)
    assert milestones_in_steps(config, steps_per_epoch=7) == (100, [50])


def test_milestones_without_steps_are_whole_epochs():
    config = TrainConfig(epochs=10, milestones=(5, 8))
    assert milestones_in_steps(config, steps_per_epoch=7) == (70, [35, 56])

