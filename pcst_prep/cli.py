"""``pcst-prep``: the command line over :mod:`pcst_prep`. Thin: it builds a configuration and
calls the Python API; every error a user can cause is one line on stderr and exit status 2."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from . import __version__
from .clitools import ErrorReportingGroup, config_options, config_values
from .config import BuildConfig
from .errors import InputError


class _Group(ErrorReportingGroup):
    prog = "pcst-prep"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcst-prep")
def main():
    """Build patch-craft training sets from folders of noisy videos or bursts."""


def _noise_params(sigma, kernel, params):
    values = {}
    if sigma is not None:
        values["sigma"] = sigma
    if kernel is not None:
        values["kernel_size"] = kernel
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--noise-param wants KEY=VALUE, got {item!r}")
        try:
            values[key] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            values[key] = value
    return values


pipeline_option = click.option(
    "--pipeline", default="real", show_default=True,
    help="Preset in pipelines/ (real: your noisy footage as it is, p chosen automatically; "
    "paper-real; paper-synthetic and demo, which add synthetic noise) or a .toml file.")


def noise_options(command):
    """The noise model's parameters, which BuildConfig holds as one dict (noise_params)."""
    for option in reversed([
        click.option("--sigma", type=float,
                     help="Noise sigma (0-255 scale) for correlated-gaussian."),
        click.option("--kernel", type=int, help="Box kernel size k for correlated-gaussian."),
        click.option("--noise-param", multiple=True, metavar="KEY=VALUE",
                     help="Other noise model parameters (repeatable)."),
    ]):
        command = option(command)
    return command


def _config(pipeline, values, sigma, kernel, noise_param) -> BuildConfig:
    """The pipeline's configuration with the given BuildConfig ``values`` and noise options."""
    from .config import load_pipeline

    preset = load_pipeline(pipeline)
    if values.get("noise", preset.noise) != preset.noise:
        values["noise_params"] = {}  # the preset's parameters belong to the preset's model
    config = load_pipeline(pipeline, **values)
    noise_params = _noise_params(sigma, kernel, noise_param)
    if noise_params:
        config = config.replace(noise_params={**config.noise_params, **noise_params})
    return config


@main.command()
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("store")
@pipeline_option
@config_options(BuildConfig, defaults_from_preset=True)
@noise_options
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes that match and score bursts, on a Dask cluster started on this "
              "machine; the cores are shared among them (1: no cluster, this process uses "
              "every core). Not with --scheduler, whose cluster has its own workers. (pcst-train "
              "--workers is another thing: processes that read the store for training.)")
@click.option("--scheduler", metavar="ADDRESS", help="Run on an existing dask.distributed "
              "cluster (tcp://host:port); the store must be shared with the workers (a shared "
              "path, or an object store URL such as s3://bucket/run.zarr).")
@click.option("--overwrite", is_flag=True, help="Replace a store built with other settings.")
@click.option("--skip-bad", is_flag=True, help="Skip unusable sequences with a warning.")
@click.option("--no-progress", is_flag=True, help="One line per stage instead of progress bars.")
@click.option("--validation-from", metavar="STORE",
              help="Copy the held-out bursts' validation tiles from STORE, a finished store of "
              "the same input and settings but the patch size (the other store of a "
              "pcst-train trial): the same tiles, not computed again.")
def build(input_dir, store, pipeline, sigma, kernel, noise_param, workers, scheduler, overwrite,
          skip_bad, no_progress, validation_from, **parameters):
    """Build a filtered training store STORE (a directory, or an fsspec URL such as
    s3://bucket/run.zarr) from every sequence in INPUT_DIR.

    Options not given come from the pipeline preset. Interrupted builds resume when the same
    command is run again.
    """
    from .build import build as run_build

    source = "--noise" if parameters.get("noise") else f"the {pipeline} pipeline"
    config = _config(pipeline, config_values(BuildConfig, parameters), sigma, kernel,
                     noise_param)
    if config.noise != "none":
        click.echo(f"pcst-prep: adding synthetic noise ({config.noise} {config.noise_params}, "
                   f"from {source}) to the input, whose frames are kept as the clean reference",
                   err=True)
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if scheduler and workers != 1:
        raise InputError(f"--workers {workers} starts a local cluster, --scheduler uses "
                         "another one: give one of them")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        summary = run_build(input_dir, store, config, workers=workers, scheduler=scheduler,
                            overwrite=overwrite, skip_bad=skip_bad, progress=not no_progress,
                            validation_from=validation_from)
    for w in caught:
        if str(w.message).startswith("skipped"):
            click.echo(f"pcst-prep: warning: {w.message}", err=True)
    done = ("already built (nothing to do)" if summary.was_complete else
            "resumed and finished" if summary.resumed else "built")
    click.echo(f"{done} {summary.store} in "
               f"{summary.seconds:.1f} s: {summary.bursts} bursts, {summary.scored_pairs:,} "
               f"scored pairs, {summary.kept_pairs:,} kept (s_min {summary.s_min:.4g}), "
               f"{summary.samples:,} training tiles, {summary.validation_tiles:,} held-out "
               f"validation tiles")
    from .report import store_info

    click.echo(store_info(store))


@main.command()
@click.argument("input_dir", type=click.Path(path_type=Path))
@pipeline_option
@config_options(BuildConfig, defaults_from_preset=True)
@noise_options
@click.option("--bursts", "n_bursts", type=int, default=3, show_default=True,
              help="Bursts sampled, spread over the input.")
@click.option("--png", type=click.Path(path_type=Path),
              help="Write the evidence plot here [tune.png in the current directory].")
@click.option("--skip-bad", is_flag=True, help="Skip unusable sequences with a warning.")
def tune(input_dir, pipeline, sigma, kernel, noise_param, n_bursts, png, skip_bad,
         **parameters):
    """Recommend the patch size p (and the search, the r_mean window and the validation
    targets' hole) for INPUT_DIR, from the noisy frames alone; print the evidence and plot it.

    Takes the build's options, so that it scores what that build would (a build with
    --patch-size auto runs the same choice).
    """
    from tqdm.auto import tqdm

    from .tune import format_report, plot_report, tune as run_tune

    config = _config(pipeline, config_values(BuildConfig, parameters), sigma, kernel,
                     noise_param)
    report = run_tune(input_dir, config, n_bursts=n_bursts, skip_bad=skip_bad,
                      progress=lambda jobs: tqdm(jobs, desc="tune", unit="burst x p",
                                                 file=sys.stderr,
                                                 disable=not sys.stderr.isatty()))
    click.echo(format_report(report))
    click.echo(f"\nplot: {plot_report(report, png or Path.cwd() / 'tune.png')}")


@main.command("add-noise")
@click.argument("image", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--pipeline", default="demo", show_default=True,
              help="The preset whose synthetic noise is added (demo, paper-synthetic) or a "
              ".toml file.")
@click.option("--noise", help="Another noise model: a built-in (correlated-gaussian, camera) or "
              "module:factory.")
@noise_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the noise.")
def add_noise(image, output, pipeline, noise, sigma, kernel, noise_param, seed):
    """Add a pipeline's synthetic noise to a clean IMAGE and write OUTPUT (16 bits for PNG and
    TIFF; values clipped to [0, 1]): the noise model and level a build with that pipeline adds,
    in another draw. For trying a model on a frame whose clean version is known."""
    import numpy as np

    from .bursts import IMAGE_SUFFIXES, read_image, write_image
    from .noise import get_noise_model

    config = _config(pipeline, {"noise": noise} if noise else {}, sigma, kernel, noise_param)
    model = get_noise_model(config.noise, **config.noise_params)
    if model is None:
        raise InputError(f"the {config.pipeline} pipeline adds no noise; choose one that does "
                         "(--pipeline demo) or give --noise")
    if not image.is_file():
        raise InputError("no such image file", image)
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"unsupported output type {output.suffix!r} (png, tif, jpg)", output)
    clean = read_image(image)
    noisy = model(clean[None], np.random.default_rng(seed))[0]
    write_image(output, np.clip(noisy, 0.0, 1.0), np.uint16)
    click.echo(f"wrote {output}: {image.name} with {model.name} noise {model.params}")


@main.command()
@click.argument("store")
@click.option("--png", type=click.Path(path_type=Path),
              help="Write the histogram plot here [STORE/../<store name>_s_yr.png; for a URL, "
                   "in the current directory].")
@click.option("--bins", type=int, default=200, show_default=True, help="Bins of the plot.")
def histogram(store, png, bins):
    """Summarise the s_yr filter of STORE: counts, peak, s_min, kept fraction, histogram."""
    from .report import format_histogram, plot_histogram, s_yr_histogram
    from .store import is_url, location, open_store, read_filter, refuse_if_building, store_name

    group = open_store(store)
    if read_filter(group) is None:  # before stage 2: wait for a live build, not "build again"
        refuse_if_building(store)
    h = s_yr_histogram(group, bins=bins)
    click.echo(format_histogram(h))
    if png is None:
        folder = Path.cwd() if is_url(location(store)) else location(store).parent
        png = folder / f"{store_name(store)}_s_yr.png"
    click.echo(f"\nplot: {plot_histogram(h, png)}")


@main.command()
@click.argument("store")
def info(store):
    """Parameters, sources, bursts, pairs, sizes on disk and s_min of STORE."""
    from .report import store_info

    click.echo(store_info(store))


@main.command()
@click.argument("store")
@click.option("--no-progress", is_flag=True, help="No progress bar or lines.")
def check(store, no_progress):
    """Read every chunk of STORE and list what is damaged (exit status 2 if anything is)."""
    from .store import check as run_check

    problems = run_check(store, progress=not no_progress)
    for problem in problems:
        click.echo(problem)
    if problems:
        raise InputError(f"{len(problems)} damaged array(s) or chunk(s); rebuild the store "
                         "(pcst-prep build ... --overwrite)", store)
    click.echo(f"{store}: every array and chunk reads")


if __name__ == "__main__":
    main()
