from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from tests.helpers import TEST_DATA, m21_path
from tests.hostile import abc_megabyte_line, musicxml_overfull_bar


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_tokenize_json_object_per_tune() -> None:
    code, out, _ = run("tokenize", str(TEST_DATA / "two_tunes.abc"), "--json", "--composer", "Bach")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["id"] for o in objects] == ["two_tunes.abc#X:1", "two_tunes.abc#X:7"]
    first = objects[0]
    assert first["tokens"][:5] == ["Composer_Bach", first["tokens"][1], "BOS", "Bar", "TS_3/4"]
    assert first["tokens"][1].startswith("Tempo_") and first["tokens"][-1] == "EOS"
    assert len(first["ids"]) == len(first["tokens"]) and isinstance(first["report"], dict)
    assert objects[1]["meters"] == ["2/4", "3/4"]  # 5/4 normalised


def test_tokenize_then_detokenize_round_trip(tmp_path: Path) -> None:
    tokens = tmp_path / "t.json"
    code, out, _ = run("tokenize", str(m21_path("bach/bwv66.6.mxl")), "-o", str(tokens))
    assert code == 0 and "wrote" in out
    obj = json.loads(tokens.read_text())
    for target in ("x.mid", "x.musicxml"):
        code, out, err = run("detokenize", str(tokens), "-o", str(tmp_path / target))
        assert code == 0, err
        assert f"{obj['bars']} bars" in out
    # A bare list of token strings works too.
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(obj["tokens"]))
    code, _, err = run("detokenize", str(plain), "-o", str(tmp_path / "y.mid"))
    assert code == 0, err


def test_tokenize_at_resolution_24_and_with_a_vocab_file(tmp_path: Path) -> None:
    vocab = tmp_path / "v.json"
    assert run("vocab", "--resolution", "24", "-o", str(vocab))[0] == 0
    code, out, _ = run(
        "tokenize", str(m21_path("mozart/k458/movement3.mxl")), "--json", "--vocab", str(vocab)
    )
    obj = json.loads(out)
    assert code == 0 and obj["resolution"] == 24
    # 4/4 has 96 positions at 24 per quarter; this movement uses the second half of the bar.
    assert max(int(t[4:]) for t in obj["tokens"] if t.startswith("Pos_")) >= 48


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("empty.mid", "the file is empty"),
        ("truncated.mid", "not a readable MIDI file"),
        ("malformed.musicxml", "not well-formed XML"),
        ("notes.txt", "unsupported file type"),
    ],
)
def test_bad_input_is_one_line_without_traceback(name: str, problem: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "tokenize", str(TEST_DATA / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and problem in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.corpus
def test_debug_shows_the_traceback() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "--debug",
            "tokenize",
            str(TEST_DATA / "truncated.mid"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ScoreParseError" in proc.stderr


def test_unknown_composer_and_bad_detokenize_input(tmp_path: Path) -> None:
    code, _, err = run("tokenize", str(TEST_DATA / "two_tunes.abc"), "--composer", "Nobody")
    assert code == 1 and "unknown composer 'Nobody'" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(["Composer_None", "Tempo_96", "BOS", "Pos_3", "EOS"]))
    code, _, err = run("detokenize", str(bad), "-o", str(tmp_path / "o.mid"))
    assert code == 1 and "Pos_3 is not allowed here" in err
    code, _, err = run("detokenize", str(bad), "-o", str(tmp_path / "o.mid"), "--lenient")
    assert code == 0 and "warning" in err
    code, _, err = run("detokenize", str(bad), "-o", str(tmp_path / "o.wav"))
    assert code == 1 and "cannot write '.wav'" in err


def test_every_command_has_help_with_an_example() -> None:
    for command in ("tokenize", "detokenize", "vocab", "demo"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Example" in out, command


def test_demo_round_trips_and_writes_outputs(tmp_path: Path) -> None:
    code, out, err = run("demo", "--out", str(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["all_round_trips_exact"] and len(summary["pieces"]) == 8
    assert (tmp_path / "tokens.jsonl").exists() and len(list(tmp_path.glob("*.mid"))) == 8


def test_params_file_reaches_the_tokenizer(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("vocab: {composers: [Haydn]}\n")
    code, out, err = run(
        "tokenize",
        str(TEST_DATA / "two_tunes.abc"),
        "--json",
        "--params",
        str(params),
        "--composer",
        "Haydn",
    )
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["tokens"][0] == "Composer_Haydn"
    params.write_text("meter: {incomplete_bars: sometimes}\n")
    code, _, err = run("tokenize", str(TEST_DATA / "two_tunes.abc"), "--params", str(params))
    assert code == 1 and "incomplete_bars must be" in err and str(params) in err


def gnm_process(*args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI as a user would (its own process); the result and the seconds it took."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return proc, time.monotonic() - started


@pytest.mark.parametrize(
    ("make", "options", "reasons"),
    [
        (abc_megabyte_line, (), {"too_large"}),  # the fast reader refuses it at once
        pytest.param(  # music21, until the 3 s limit stops it
            abc_megabyte_line,
            ("--reader", "reference", "--timeout", "3"),
            {"timeout"},
            marks=pytest.mark.corpus,
        ),
        # Either the meter stage copes, or its failure is one line (it recursed until Python gave up).
        pytest.param(
            musicxml_overfull_bar,
            ("--timeout", "20"),
            {"ok", "RecursionError", "timeout"},
            marks=pytest.mark.corpus,
        ),
    ],
)
def test_tokenize_of_a_hostile_file_ends_in_time_with_one_line(
    make: Callable[[Path], Path], options: tuple[str, ...], reasons: set[str], tmp_path: Path
) -> None:
    path = make(tmp_path)
    limit = float(options[options.index("--timeout") + 1]) if "--timeout" in options else 10.0
    proc, seconds = gnm_process("tokenize", str(path), *options)
    assert seconds < limit + 15  # the start of two Python processes, music21 imported
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        assert "ok" in reasons and "tokens" in proc.stdout
        return
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    reason = lines[0].removeprefix(f"gnm: error: {path}: ").split(" (")[0]
    assert reason in reasons, lines[0]


def _hang(*args: object, **kwargs: object) -> None:
    time.sleep(60)


def test_detokenize_runs_under_the_params_time_limit_and_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "t.json"
    assert run("tokenize", str(TEST_DATA / "two_tunes.abc"), "-o", str(tokens))[0] == 0

    def write_then_hang(midi: object, filename: str) -> None:
        Path(filename).write_bytes(b"MThd")  # half a file, then miditoolkit hangs
        _hang()

    monkeypatch.setattr("miditoolkit.MidiFile.dump", write_then_hang)
    params = tmp_path / "params.yaml"
    params.write_text("ingest: {timeout_s: 1}\n")
    output = tmp_path / "out" / "x.mid"
    output.parent.mkdir()
    started = time.monotonic()
    code, _, err = run("detokenize", str(tokens), "-o", str(output), "--params", str(params))
    assert time.monotonic() - started < 30
    assert code == 1 and err.strip() == f"gnm: error: {tokens}: timeout (still running after 1 s)"
    assert list(output.parent.iterdir()) == []  # neither the output nor its temporary file
    # --timeout overrides the params file (and the defaults).
    monkeypatch.setattr("pipeline.cli.tokens._decode_file", _hang)
    code, _, err = run("detokenize", str(tokens), "-o", str(output), "--timeout", "0.5")
    assert code == 1 and "timeout (still running after 0.5 s)" in err
