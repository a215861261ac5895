"""``pcst-train``: the command line over :mod:`pcst_train`.

``pcst-train STORE --out RUN_DIR`` trains (the default command); ``pretrain``, ``denoise`` and
``evaluate`` are subcommands. Errors a user can cause are one line on stderr, exit status 2.
This module imports torch only inside the commands (torch is the extra ``pcst[train]``), so
that without it every command can still describe itself and fail with one line saying how to
install it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from click.core import ParameterSource

from pcst_prep import __version__
from pcst_prep.clitools import ErrorReportingGroup, config_options, config_values
from pcst_prep.errors import InputError

from .config import BEFORE_OPTIONS, ONNX_OPSET, PretrainConfig, TrainConfig, read_preset


class _DefaultGroup(ErrorReportingGroup):
    """Runs ``train`` when the first argument is not a subcommand."""

    prog = "pcst-train"
    resume_hint = "run it again (with --resume to continue from the run's last.pt, if it has one)"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["train", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:  # torch is an extra: pcst[train]
            if exc.name != "torch" and not (exc.name or "").startswith("torch."):
                raise
            self._fail("torch is not installed; install the trainer with: "
                       "pip install 'pcst[train]'")


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pcst-train")
def main():
    """Adapt a pre-trained denoiser to a pcst store, and use it.

    pcst-train STORE --out RUN_DIR [options] trains (see `pcst-train train --help`).
    """


@main.command()
@click.argument("store")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Run directory: log.csv, last.pt, final.pt, curves.png.")
@config_options(TrainConfig)
@click.option("--resume", is_flag=False, flag_value="auto", default=None,
              help="Continue a run: 'auto' (RUN_DIR/last.pt) or a checkpoint path.")
@click.option("--overwrite", is_flag=True,
              help="Start afresh in a RUN_DIR that holds a run (its files are replaced).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(store, out_dir, resume, overwrite, no_progress, **options):
    """Adapt a denoiser to STORE against its patch-craft targets with the mean absolute
    error (--loss), less the target pixels that --pixel-filter finds wrong.

    With --resume the run continues with its own settings: options given again must agree
    with them (a differing one is refused, named), and so must STORE.
    """
    from .train import train as run

    _refuse_existing_run(out_dir, resume, overwrite)
    values = config_values(TrainConfig, options)
    if resume:
        values = _resumed_settings(store, out_dir, resume, _given_on_command_line(values))
    config = TrainConfig(**values)
    result = run(store, out_dir, config, resume=resume, progress=not no_progress)
    if result.get("init_from_rgb"):
        click.echo(f"started from {config.init} (RGB) as a grayscale model: the RGB model on the "
                   "grey frame in every channel, its outputs averaged")
    resumed_at = result.get("resumed_at")
    session = f" (resumed at step {resumed_at}: this session's time)" if resumed_at else ""
    click.echo(f"trained {result['steps']} steps ({result['epochs']} epochs) in "
               f"{result['seconds']:.1f} s{session} on {result['device']} "
               f"({result['precision']}) -> {result['final']}")
    before, after = result["before"], result["after"]
    if after is None:
        click.echo("no validation: the store holds no held-out tiles (build it with --holdout)")
        return
    kept = result.get("validation_kept")
    kept = (f" ({kept:.1%} of their target pixels: --validation-filter "
            f"{config.validation_filter:g})" if config.validation_filter and kept is not None
            else "")
    click.echo(f"validation loss ({config.validation_loss}) on {result['validation_tiles']} "
               f"held-out tiles{kept}: "
               f"{after['val_loss']:.6g}" + (f" (before {before['val_loss']:.6g})" if before
                                             else "") +
               f"; best {result['best_loss']:.6g} at step {result['best_step']} -> "
               f"{result['best']}" + (" (stopped early)" if result["stopped_early"] else ""))
    if result["best_step"] == 0 and Path(result["best"]).exists():
        click.echo("no validation after the start beat the starting model: best.pt is that "
                   "model unchanged")
    if after.get("val_psnr") is not None:
        click.echo("PSNR on their clean tiles (measured, not used to choose): "
                   + (f"{before['val_psnr']:.2f} dB before, " if before else "")
                   + f"{after['val_psnr']:.2f} dB after")


def _frames_progress(frames):
    """``frames``, with a progress bar on a terminal, else a line every few seconds."""
    from pcst_prep.progress import Progress

    frames = list(frames)
    bar = Progress(len(frames), "denoise", "frame")
    try:
        for frame in frames:
            yield frame
            bar.update()
    finally:
        bar.close()


def _note(message: str) -> None:
    """A line for the user on stderr (beside the command's results on stdout)."""
    click.echo(message, err=True)


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
def compare(runs):
    """Put training runs side by side, ranked by their clean-free validation loss (a
    `pcst-train trial` folder stands for its runs)."""
    from .runs import format_comparison, summarise_run

    expanded = []
    for run in runs:
        if (run / "trial.json").exists() and not (run / "log.csv").exists():
            expanded += sorted(d for d in run.iterdir() if (d / "log.csv").exists())
        else:
            expanded.append(run)
    click.echo(format_comparison([summarise_run(r) for r in expanded]))


@main.command(short_help="Choose between stores (e.g. two p) by short trial trainings.")
@click.argument("stores", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Trial directory: a run directory per store, trial.json, trial.png.")
@config_options(TrainConfig, defaults_from_preset=True)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def trial(stores, out_dir, no_progress, **options):
    """Train each of STORES briefly from the same start and say which reached the lowest
    clean-free validation loss: how to settle the patch size where `pcst-prep tune` says
    its evidence is weak (build a second store at the p it names).

    Every store gets the same training: the options below, else 300 steps of batch 16 from
    the shipped UNet at lr 3e-4, validated every 50 steps (a store of 12 training
    bursts: about 13 s on a 2-core CPU with AMX, 25 to 38 s without; --steps sets the
    length, --epochs then only places the lr halvings).
    The stores are ranked by their lowest validation loss after step 0 and must share their
    validation set (the same input, --holdout, --seed and validation options; p may
    differ). Run it again after an interruption: finished trainings are kept, an unfinished
    one continues.
    """
    from .trial import TRIAL_DEFAULTS, format_trial
    from .trial import trial as run

    config = TrainConfig(**{**TRIAL_DEFAULTS, **config_values(TrainConfig, options)})
    result = run(list(stores), out_dir, config, progress=not no_progress)
    click.echo(format_trial(result))
    click.echo(f"wrote {Path(out_dir) / 'trial.json'} and {Path(out_dir) / 'trial.png'}")


@main.command(short_help="Blind i.i.d. Gaussian pre-training on clean images.")
@click.argument("image_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Run directory: log.csv, last.pt, final.pt, curves.png.")
@click.option("--config", "preset", type=click.Path(path_type=Path),
              help="A .toml file of these options' values (snake_case names), such as "
              "pipelines/pretrain/unet.toml; options given here override it.")
@config_options(PretrainConfig)
@click.option("--resume", is_flag=False, flag_value="auto", default=None,
              help="Continue a run: 'auto' (RUN_DIR/last.pt) or a checkpoint path.")
@click.option("--overwrite", is_flag=True,
              help="Start afresh in a RUN_DIR that holds a run (its files are replaced).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def pretrain(image_dir, out_dir, preset, resume, overwrite, no_progress, **options):
    """Blind i.i.d. Gaussian pre-training on the clean images in IMAGE_DIR.

    Random crops of the images get Gaussian noise of a level drawn uniformly in
    [0, sigma-max]; the model learns to remove it. The result is a starting point for
    `pcst-train STORE --init`.
    """
    from .pretrain import pretrain as run

    _refuse_existing_run(out_dir, resume, overwrite)
    given = _given_on_command_line(config_values(PretrainConfig, options))
    config = (read_preset(PretrainConfig, preset, **given) if preset
              else PretrainConfig(**given))
    result = run(image_dir, out_dir, config, resume=resume, progress=not no_progress)
    click.echo(f"pre-trained {config.model} for {result['steps']} steps in "
               f"{result['seconds']:.1f} s -> {result['final']}")


RUN_FILES = ("last.pt", "final.pt", "log.csv")
# What a run writes in its folder, removed by --overwrite (nothing else there is touched)
RUN_OUTPUTS = (*RUN_FILES, "best.pt", "curves.png", "crops.png", "validated")


def _refuse_existing_run(out_dir: Path, resume, overwrite: bool):
    """A run never silently replaces or mixes with a run in ``out_dir``: a new one needs an
    empty folder or ``--overwrite`` (which removes the old run's files first), a resumed one
    must continue a checkpoint of that folder's own run."""
    out_dir = Path(out_dir)
    if resume and overwrite:
        raise InputError("give --resume (continue the run) or --overwrite (start afresh), "
                         "not both", out_dir)
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if not found:
        return
    if overwrite:
        for name in RUN_OUTPUTS:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        return
    if not resume:
        raise InputError(f"holds a run already ({', '.join(found)}); --resume continues it, "
                         "--overwrite replaces it, or give another --out", out_dir)
    checkpoint = out_dir / "last.pt" if resume == "auto" else Path(resume)
    if not checkpoint.exists() or checkpoint.resolve().parent != out_dir.resolve():
        raise InputError(f"holds a run ({', '.join(found)}) that --resume {resume} would not "
                         "continue (a run resumes from a checkpoint in its own folder); "
                         "--overwrite replaces it, or give another --out", out_dir)


# Settings a resumed run may change (they do not alter what it learnt so far); any other
# differing option is refused.
RESUME_ADJUSTABLE = {"steps", "epochs", "patience", "validate_every", "log_every", "workers",
                     "device", "keep_validated"}


def _resumed_settings(store, out_dir, resume, given: dict) -> dict:
    """The settings of the run a --resume continues, checked against the options given again
    and the store; without a checkpoint yet (--resume auto on a new run), the options given."""
    import dataclasses

    from .checkpoints import read_checkpoint
    from .runs import store_key

    path = Path(out_dir) / "last.pt" if resume == "auto" else Path(resume)
    if resume == "auto" and not path.exists():
        return given
    state = read_checkpoint(path)
    previous = dict(state.get("train_config") or {})
    predates_filter = bool(previous) and "validation_filter" not in previous
    if predates_filter:  # judged on every pixel so far: a run's log stays one estimator
        previous["validation_filter"] = BEFORE_OPTIONS["validation_filter"]
    predates_mae = bool(previous) and "loss" not in previous
    if predates_mae:  # trained and judged on squared errors so far: it goes on so
        previous.update({name: BEFORE_OPTIONS[name] for name in ("loss", "validation_loss")})
    for name, value in given.items():
        if name not in previous or not _differs(previous[name], value):
            continue
        option = "--" + name.replace("_", "-")
        if name in RESUME_ADJUSTABLE:
            click.echo(f"pcst-train: resuming with {option} {value} (was {previous[name]})",
                       err=True)
            continue
        raise InputError(f"{option} {value} differs from the run being resumed "
                         f"({previous[name]}); resume without it, or start a new --out", path)
    stored = (state.get("store") or {}).get("path")
    if stored is not None and store_key(stored) != store_key(store):
        raise InputError(f"the run being resumed trained on {stored}, not {store}; resume on "
                         "the same store, or start a new --out", path)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: (tuple(v) if isinstance(v, list) else v)
                for k, v in previous.items() if k in names}
    if predates_mae and ("loss" not in given or "validation_loss" not in given):
        click.echo("pcst-train: the run being resumed predates --loss; it goes on with the "
                   "squared error it started with (--loss mse --validation-loss mse)", err=True)
    if previous and "pixel_filter" not in previous:  # a run from before the option: plain MSE
        settings["pixel_filter"] = BEFORE_OPTIONS["pixel_filter"]
        if "pixel_filter" not in given:
            click.echo("pcst-train: the run being resumed predates --pixel-filter; it goes on "
                       "with the plain MSE it started with (--pixel-filter 0)", err=True)
    if predates_filter:
        click.echo("pcst-train: the run being resumed predates --validation-filter; its "
                   "validation loss stays over every pixel (--validation-filter 0), so that "
                   "its figures compare", err=True)
    return {**settings, **given}


def _differs(previous, value) -> bool:
    if isinstance(previous, (list, tuple)) or isinstance(value, (list, tuple)):
        return list(previous) != list(value)
    return previous != value


def _given_on_command_line(values: dict) -> dict:
    """The entries of ``values`` whose options were given, not left at their defaults."""
    context = click.get_current_context()
    return {name: value for name, value in values.items()
            if context.get_parameter_source(name) is not ParameterSource.DEFAULT}


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("input", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--compare", "compare_path", type=click.Path(path_type=Path),
              help="Also write a side-by-side PNG here: noisy | denoised (| clean, with "
              "--clean), one image pixel per pixel. INPUT must be an image (or --frame).")
@click.option("--clean", "clean_path", type=click.Path(path_type=Path),
              help="The clean image, where it is known: print PSNR and SSIM of the noisy and "
              "the denoised image against it. INPUT must be an image (or --frame).")
@click.option("--frame", type=click.IntRange(min=0),
              help="INPUT being a video or a frame folder: denoise only this frame (0-based, "
              "in file order, as `pcst-prep info` lists a store's held-out frames) into an "
              "image, so that --compare and --clean work on it.")
@click.option("--tile", type=int, default=256, show_default=True, help="Tile side.")
@click.option("--overlap", type=int, default=32, show_default=True, help="Context margin.")
@click.option("--device", default="auto", show_default=True)
def denoise(checkpoint, input, output, compare_path, clean_path, frame, tile, overlap, device):
    """Denoise an image, a frame folder or a video.

    Images and frame folders keep their bit depth. A video becomes a folder of 16-bit PNG
    frames, or, where OUTPUT ends in a video suffix (.mp4, ...), an 8-bit H.264 video (lossy)
    at the source's frame rate. CHECKPOINT is a run's best.pt or final.pt, 'pretrained' (the
    shipped UNet) or one of the authors' files.
    """
    from pcst_prep.bursts import IMAGE_SUFFIXES, read_image

    from .checkpoints import load_model
    from .denoise import (check_tiling, denoise_image, denoise_path, read_frame,
                          write_comparison)
    from .loop import resolve_device

    if not input.exists():
        raise InputError("no such file or directory", input)
    image = input.is_file() and input.suffix.lower() in IMAGE_SUFFIXES
    if frame is not None and image:
        raise InputError("--frame picks a frame of a video or a frame folder, not of an image",
                         input)
    single = image or frame is not None
    if (compare_path or clean_path) and not single:
        raise InputError("--compare and --clean take a single image as INPUT (or --frame)",
                         input)
    clean = read_image(clean_path) if clean_path else None
    if clean is not None:
        shape = (read_image(input) if frame is None else read_frame(input, frame)[0]).shape
        if clean.shape != shape:
            raise InputError(f"shape {clean.shape} differs from INPUT's {shape}", clean_path)
    check_tiling(tile, overlap)
    dev = resolve_device(device)
    model, _ = load_model(checkpoint)
    model.to(dev)
    if not single:
        written = denoise_path(model, input, output, tile, overlap, dev,
                               progress=_frames_progress,
                               say=_note)
        click.echo(f"wrote {len(written)} file(s) to {output}")
        return
    written, noisy, denoised = denoise_image(model, input, output, tile, overlap, dev,
                                             say=_note, frame=frame)
    click.echo(f"wrote {written}")
    denoised = denoised.clip(0.0, 1.0)
    panels = [("noisy", noisy), ("denoised", denoised)]
    if clean is not None:
        from .evaluate import scores

        (p_noisy, s_noisy), (p_out, s_out) = scores(noisy, clean), scores(denoised, clean)
        click.echo(f"against {clean_path}: noisy {p_noisy:.2f} dB PSNR, SSIM {s_noisy:.4f}; "
                   f"denoised {p_out:.2f} dB, SSIM {s_out:.4f}")
        panels = [(f"noisy {p_noisy:.2f} dB", noisy), (f"denoised {p_out:.2f} dB", denoised),
                  ("clean", clean)]
    if compare_path:
        click.echo(f"side by side: {write_comparison(compare_path, panels)}")


@main.command(help="Write CHECKPOINT for use outside Python: OUT_DIR/model.ts (TorchScript), "
              f"model.onnx (ONNX, opset {ONNX_OPSET}) and model.json, the model card "
              "(architecture, channels, value range, training store and settings, validation "
              "figures). Both models take float32 [N, C, H, W] in [0, 1] of any N, H and W; "
              "each is checked against PyTorch before the card is written. CHECKPOINT may be "
              "'pretrained' (the shipped UNet) or one of the authors' files.")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
def export(checkpoint, out_dir):
    from .export import export_model

    card = export_model(checkpoint, out_dir)
    check = card["check"]["max_abs_diff"]
    onnx = (f"{check['onnx']:.2g}" if check["onnx"] is not None
            else "not checked (onnxruntime is not installed)")
    click.echo(f"wrote {out_dir / 'model.ts'}, {out_dir / 'model.onnx'} (opset "
               f"{card['files']['onnx_opset']}) and {out_dir / 'model.json'}; largest difference from PyTorch: "
               f"TorchScript {check['torchscript']:.2g}, ONNX {onnx}")


@main.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--clean", "clean_dir", type=click.Path(path_type=Path), help="Clean images.")
@click.option("--noisy", "noisy_dir", type=click.Path(path_type=Path),
              help="Noisy images, paired with --clean by file name.")
@click.option("--store", help="A store with clean tiles (a path or an fsspec URL).")
@click.option("--limit", type=int, help="Evaluate at most this many store tiles.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path),
              help="Write the table here [evaluation.csv next to the checkpoint].")
@click.option("--device", default="auto", show_default=True)
def evaluate(checkpoint, clean_dir, noisy_dir, store, limit, csv_path, device):
    """PSNR and SSIM (data range 1 on [0, 1] values) against clean references."""
    from .checkpoints import load_model
    from .evaluate import evaluate_folders, evaluate_store, format_table, write_csv
    from .loop import resolve_device

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    if (store is None) == (clean_dir is None or noisy_dir is None):
        raise InputError("give either --clean and --noisy, or --store")
    dev = resolve_device(device)
    model, _ = load_model(checkpoint)
    model.to(dev)
    if store is not None:
        rows = evaluate_store(model, store, limit, dev)
    else:
        rows = evaluate_folders(model, clean_dir, noisy_dir, dev)
    click.echo(format_table(rows))
    path = write_csv(rows, csv_path or Path(checkpoint).parent / "evaluation.csv")
    click.echo(f"table: {path}")


if __name__ == "__main__":
    main()
