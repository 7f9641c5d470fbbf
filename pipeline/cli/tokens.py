"""`gnm tokenize|detokenize|vocab|demo`: the commands on single score and token files."""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from pathlib import Path
from typing import Any

import click

from pipeline.cli.common import PARAMS_OPTION, tracked
from pipeline.cli.limits import cli_limits, limit_options, run_limited
from pipeline.errors import GnmError, TokenizeError
from pipeline.io.atomic import write_text_atomic
from pipeline.params import Params, load_params
from pipeline.readers import READER_KINDS, ItemFailure, ReaderKind, read_items
from pipeline.score import Score
from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig
from pipeline.tokenizer.chain import TokenizedScore, tokenize_score
from pipeline.writers import WRITABLE_EXTENSIONS, write_score


def _tokenizer(
    vocab_path: str | None, resolution: int | None, params: Params | None = None
) -> Tokenizer:
    """The tokenizer of --vocab, else of params.yaml's vocab section with --resolution applied."""
    if vocab_path and resolution:
        raise click.UsageError("give either --vocab or --resolution, not both")
    if vocab_path:
        return Tokenizer(Vocab.load(vocab_path))
    config = (params or Params()).vocab
    if resolution:
        try:
            config = dataclasses.replace(config, resolution=resolution)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--resolution") from None
    return Tokenizer(Vocab(config))


READER_OPTION = click.option(
    "--reader",
    type=click.Choice(READER_KINDS),
    default=None,
    help="fast (our readers, symusic for MIDI) or reference (music21 / miditoolkit); "
    "default: params.yaml's ingest.reader.",
)
RESOLUTION_OPTION = click.option(
    "--resolution", type=int, default=None, help="Grid ticks per quarter note (default 12)."
)
VOCAB_OPTION = click.option(
    "--vocab",
    "vocab_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Vocabulary JSON file (instead of --resolution / params).",
)


def tokenized_json(result: TokenizedScore, tokenizer: Tokenizer) -> dict[str, Any]:
    """The JSON object `gnm tokenize --json` prints for one score."""
    score = result.score
    return {
        "id": score.meta.id,
        "source": score.meta.source_path,
        "title": score.meta.title,
        "composer": result.composer,
        "vocab_hash": tokenizer.vocab.hash,
        "resolution": tokenizer.vocab.resolution,
        "bars": len(score.bars),
        "notes": len(score.notes),
        "meters": sorted(set(score.meters())),
        "pickup_shift_quarters": str(score.pickup_shift),
        "tokens": tokenizer.to_strings(result.ids),
        "ids": result.ids,
        "report": {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.report.items()
        },
    }


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--composer", default=None, help="Composer token to condition on (default: Composer_None)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object per score (JSON Lines)."
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON here."
)
@RESOLUTION_OPTION
@VOCAB_OPTION
@click.option(
    "--expand-repeats", is_flag=True, help="Expand written repeats (music21) before tokenizing."
)
@READER_OPTION
@PARAMS_OPTION
@limit_options
def tokenize(
    file: Path,
    composer: str | None,
    as_json: bool,
    output: Path | None,
    resolution: int | None,
    vocab_path: str | None,
    expand_repeats: bool,
    reader: ReaderKind | None,
    params_path: str | None,
    timeout_s: float | None,
    memory_mb: int | None,
) -> None:
    """Tokenize FILE (MusicXML, MXL, kern, ABC or MIDI) into Extended REMI.

    A collection file (an ABC book) gives one result per tune. With -o, one score is written as a
    JSON object and several as JSON Lines; `gnm detokenize` reads either. Reading and tokenizing
    run in an isolated child under ingest's time and memory limits (--timeout, --memory-mb).

    \b
    Example:
      gnm tokenize bwv66.6.mxl --composer Bach --json
      gnm tokenize ballad40.abc -o ballad40.jsonl
      gnm tokenize bwv66.6.mxl --reader reference   # music21 instead of the fast reader
    """
    params = load_params(params_path)
    tokenizer = _tokenizer(vocab_path, resolution, params)
    if composer is not None:
        tokenizer.vocab.composer_id(composer)  # fail before the slow parse
    limits = cli_limits(params, timeout_s, memory_mb)
    job = partial(
        _tokenize_file,
        tokenizer=tokenizer,
        composer=composer,
        params=params,
        expand_repeats=expand_repeats,
        reader=reader or params.ingest.reader,
    )
    objects, failures, count = run_limited(job, file, limits, file)
    for failure in failures:
        click.echo(
            f"gnm: warning: {file}#X:{failure.item} skipped ({failure.reason}): {failure.detail}",
            err=True,
        )
    if not objects:
        raise GnmError(f"{file}: none of its {count} pieces can be read")
    if output is not None:
        text = (
            json.dumps(objects[0]) + "\n"
            if len(objects) == 1
            else "".join(json.dumps(o) + "\n" for o in objects)
        )
        write_text_atomic(output, text)
    if as_json:
        for obj in objects:
            click.echo(json.dumps(obj))
    else:
        for obj in objects:
            report = ", ".join(f"{k}={v}" for k, v in obj["report"].items()) or "nothing changed"
            click.echo(
                f"{obj['id']}: {obj['bars']} bars, {obj['notes']} notes, {len(obj['ids'])} tokens, "
                f"meters {', '.join(obj['meters']) or '-'}; {report}"
            )
            click.echo(
                "  " + " ".join(obj["tokens"][:16]) + (" ..." if len(obj["tokens"]) > 16 else "")
            )
        if output is not None:
            click.echo(f"wrote {output}")


def _tokenize_file(
    file: Path,
    *,
    tokenizer: Tokenizer,
    composer: str | None,
    params: Params,
    expand_repeats: bool,
    reader: ReaderKind,
) -> tuple[list[dict[str, Any]], list[ItemFailure], int]:
    """Read and tokenize every piece of `file` (runs in the limited child): the JSON objects of
    the pieces read, the failures of the others, and how many pieces the file holds."""
    items = read_items(file, expand_repeats=expand_repeats, reader=reader)
    scores = [i for i in items if isinstance(i, Score)]
    objects = []
    for score in tracked(scores, f"tokenizing {file.name}"):
        result = tokenize_score(score, tokenizer, composer, params.meter)
        objects.append(tokenized_json(result, tokenizer))
    return objects, [i for i in items if isinstance(i, ItemFailure)], len(items)


def _load_token_input(path: Path, index: int) -> tuple[list[str | int], str]:
    """Tokens (strings or ids) and an id from a tokenize JSON object, JSON Lines, or a plain list."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TokenizeError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise TokenizeError(
                f"{path}: not JSON or JSON Lines ({exc.msg} at line {exc.lineno})"
            ) from None
        if not 0 <= index < len(lines):
            raise TokenizeError(
                f"{path}: has {len(lines)} scores; --index {index} is out of range"
            ) from None
        data = lines[index]
    if isinstance(data, dict):
        if "tokens" in data:
            return list(data["tokens"]), str(data.get("id", path.stem))
        if "ids" in data:
            return list(data["ids"]), str(data.get("id", path.stem))
        raise TokenizeError(f"{path}: JSON object has neither 'tokens' nor 'ids'")
    if isinstance(data, list) and (
        all(isinstance(t, str) for t in data) or all(isinstance(t, int) for t in data)
    ):
        return data, path.stem
    raise TokenizeError(
        f"{path}: expected a `gnm tokenize` object or a list of token strings or ids"
    )


@click.command()
@click.argument("tokens_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .mid/.midi or .musicxml/.xml/.mxl.",
)
@click.option("--index", default=0, show_default=True, help="Which score of a JSON Lines file.")
@RESOLUTION_OPTION
@VOCAB_OPTION
@click.option("--lenient", is_flag=True, help="Skip invalid tokens (reported) instead of failing.")
@PARAMS_OPTION
@limit_options
def detokenize(
    tokens_file: Path,
    output: Path,
    index: int,
    resolution: int | None,
    vocab_path: str | None,
    lenient: bool,
    params_path: str | None,
    timeout_s: float | None,
    memory_mb: int | None,
) -> None:
    """Decode Extended REMI tokens (a `gnm tokenize` JSON object or a token list) to MIDI or MusicXML.

    Reading, decoding and writing run in an isolated child under ingest's time and memory limits
    (--timeout, --memory-mb).

    \b
    Example:
      gnm tokenize bwv66.6.mxl -o bwv66.6.json && gnm detokenize bwv66.6.json -o bwv66.6.mid
    """
    if output.suffix.lower() not in WRITABLE_EXTENSIONS:
        raise GnmError(
            f"{output}: cannot write '{output.suffix or '(none)'}' (use {', '.join(WRITABLE_EXTENSIONS)})"
        )
    params = load_params(params_path)
    tokenizer = _tokenizer(vocab_path, resolution, params)
    limits = cli_limits(params, timeout_s, memory_mb)
    job = partial(_decode_file, tokenizer=tokenizer, index=index, lenient=lenient, output=output)
    score_id, bars, notes, problems = run_limited(
        job, tokens_file, limits, tokens_file, writes=[output]
    )
    for problem in problems:
        click.echo(f"gnm: warning: {score_id}: {problem}", err=True)
    click.echo(f"wrote {output}: {bars} bars, {notes} notes")


def _decode_file(
    tokens_file: Path, *, tokenizer: Tokenizer, index: int, lenient: bool, output: Path
) -> tuple[str, int, int, list[str]]:
    """Decode a token file into `output` (runs in the limited child): the score's id, its bars
    and notes, and the problems skipped (with `lenient`)."""
    tokens, score_id = _load_token_input(tokens_file, index)
    ids = [t if isinstance(t, int) else tokenizer.vocab.id(t) for t in tokens]
    decoded = tokenizer.decode_full(ids, strict=not lenient, score_id=score_id)
    write_score(decoded.score, output)
    return score_id, len(decoded.score.bars), len(decoded.score.notes), list(decoded.errors)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--resolution", type=int, default=12, show_default=True, help="Grid ticks per quarter note."
)
@click.option(
    "--composer", "composers", multiple=True, help="Composer token (repeat); default: the four."
)
@click.option(
    "--max-duration", type=int, default=8, show_default=True, help="Longest Dur token in quarters."
)
def vocab(output: Path, resolution: int, composers: tuple[str, ...], max_duration: int) -> None:
    """Write a vocabulary JSON file (validated by schemas/vocab.schema.json).

    \b
    Example:
      gnm vocab --resolution 24 -o vocab24.json
    """
    kwargs: dict[str, Any] = {"resolution": resolution, "max_duration_quarters": max_duration}
    if composers:
        kwargs["composers"] = composers
    try:
        built = Vocab(VocabConfig(**kwargs))
    except ValueError as exc:
        raise GnmError(str(exc)) from None
    built.save(output)
    click.echo(
        f"wrote {output}: {len(built)} tokens, resolution {resolution}, hash {built.hash[:12]}"
    )


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Where tokens and the summary go.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(out_dir: Path, as_json: bool) -> None:
    """Tokenize a few pieces of music21's bundled corpus, check the round trip, print a summary.

    \b
    Example:
      gnm demo --out out/demo
    """
    from pipeline.demo import run_demo

    summary = run_demo(out_dir)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        from pipeline.demo import print_summary

        print_summary(summary)
    if not summary["all_round_trips_exact"]:
        raise GnmError("a round trip was not exact; see the table above")


COMMANDS = (tokenize, detokenize, vocab, demo)
