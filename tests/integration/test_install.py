"""A non-editable install works from another directory: presets ship with the package, and
without the train extra pcst-prep works and pcst-train says what is missing.

The new environment gets this environment's dependencies except torch (a folder of links on
its path), so the test needs no network and installs only pcst itself."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TINY = ["--burst-length", "3", "--patch-size", "7", "--search-radius", "3", "--large-radius",
        "6", "--tile-size", "20", "--tile-stride", "12", "--bins", "501", "--validation-patch-size",
        "15"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, work folder) of a fresh environment with ``pip install .`` of a copy of
    the source tree (so that the build leaves nothing in the repository)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if not (ROOT / name).exists() and not (ROOT / name).is_symlink():
            continue  # deleted in the working tree
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    deps = base / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("torch", "functorch", "pcst", "__editable__", "_pcst")):
            (deps / entry.name).symlink_to(entry)
    venv = base / "venv"
    # pip and setuptools come from the links too (a venv's bundled setuptools may be too old)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text(f"{deps}\n")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(source)], check=True,
                   cwd=base)
    work = base / "work"
    work.mkdir()
    made = sorted(str(p.relative_to(source)) for p in source.rglob("*")
                  if p.is_file() and p.relative_to(source).as_posix() not in files)
    return venv / "bin", work, made


def test_what_pip_install_makes_in_the_source_tree_is_ignored_by_git(installed):
    _, _, made = installed
    assert any(name.startswith("build/") for name in made)  # pip builds in the tree

    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                             input="\n".join(made), capture_output=True, text=True).stdout

    assert sorted(ignored.split()) == made


@pytest.mark.parametrize("preset", ["real", "demo", "paper-synthetic", "paper-real"])
def test_installed_pcst_prep_builds_with_each_preset(installed, tiny_input, preset):
    bin_dir, work, _ = installed

    result = subprocess.run([bin_dir / "pcst-prep", "build", tiny_input, f"{preset}.zarr",
                             "--pipeline", preset, "--no-progress", *TINY],
                            cwd=work, capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert f"pipeline       {preset}" in result.stdout
    assert not (ROOT / "build").exists()


def test_installed_without_the_train_extra_pcst_train_says_what_is_missing(installed):
    bin_dir, work, _ = installed

    result = subprocess.run([bin_dir / "pcst-train", "x.zarr", "--out", "run"], cwd=work,
                            capture_output=True, text=True)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pcst-train: error: torch is not installed; install the trainer with: "
        "pip install 'pcst[train]'"]
    assert not (work / "run").exists()
