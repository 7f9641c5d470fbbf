"""The `gnm` command line, put together in one place: the top group, `gnm data`, and every
command module's `COMMANDS` (the per-item stage commands are generated from `STAGES`).

Commands are thin: they parse arguments and call library functions. Errors that GnM raises on
purpose (`GnmError`) become one line on stderr and exit status 1; `gnm --debug ...` shows the
traceback instead. The model commands are added by `gnm_model.cli` (the data side never imports
the model side).
"""

from __future__ import annotations

from typing import Any

import click

from pipeline import __version__
from pipeline.build import build_command
from pipeline.cli.corpora import COMMANDS as CORPUS_COMMANDS
from pipeline.cli.crosscheck import COMMANDS as CROSSCHECK_COMMANDS
from pipeline.cli.data import COMMANDS as DATA_COMMANDS
from pipeline.cli.inspect import COMMANDS as INSPECT_COMMANDS
from pipeline.cli.stages import COMMANDS as STAGE_COMMANDS
from pipeline.cli.tokens import COMMANDS as TOKEN_COMMANDS
from pipeline.errors import GnmError
from pipeline.profile_pipelines import profiles_command


class GnmGroup(click.Group):
    """A click group that turns GnmError into one line and a non-zero exit (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GnmError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"gnm: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=GnmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="gnm")
def main(debug: bool) -> None:
    """GnM: reproducible score datasets, Extended REMI tokens and composer-style generation.

    \b
    Example:
      gnm demo                                  # tokenize bundled music21 pieces, print a summary
      gnm tokenize score.mxl --composer Bach --json > tokens.jsonl
    """


@click.group("data")
def data_group() -> None:
    """Build and inspect the dataset: declarations, ingest, ledger.

    \b
    Example:
      gnm data validate
      gnm data ingest --corpus m21-bach --out data/ingest
      gnm data ledger --json
    """


for _command in TOKEN_COMMANDS:
    main.add_command(_command)
for _command in (
    *CORPUS_COMMANDS,
    *DATA_COMMANDS,
    *STAGE_COMMANDS,
    *INSPECT_COMMANDS,
    *CROSSCHECK_COMMANDS,
    build_command,
    profiles_command,
):
    data_group.add_command(_command)
main.add_command(data_group)
