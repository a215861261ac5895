"""``pcst-train``: the command line over :mod:`pcst_train`."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Adapt a pre-trained denoiser to a pcst store (see issue 4: not implemented yet)."""
