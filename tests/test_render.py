from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gnm_model.cli import main
from gnm_model.render import RenderError, find_soundfont, midi_to_wav, render, wav_peak
from tests.helpers import m21_path, read_one

needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth missing (.ci/run installs it)"
)


@pytest.mark.corpus
@needs_fluidsynth
def test_a_real_chorale_renders_to_audible_audio_and_an_engraved_page(tmp_path: Path) -> None:
    done = render(m21_path("bach/bwv66.6.mxl"), tmp_path, find_soundfont())
    seconds, peak = wav_peak(done.wav.path)
    chorale = read_one(m21_path("bach/bwv66.6.mxl"))
    last = chorale.bars[-1]
    expected = float(last.start + last.length) * 60 / chorale.tempo  # the score's length in seconds
    assert (
        expected - 1 <= seconds <= expected + 6 and peak > 0.05
    )  # plus the release and reverb tail
    svg = done.svg.read_text()
    assert svg.startswith("<svg") and "</svg>" in svg
    assert done.midi.is_file() and done.musicxml.is_file()


@needs_fluidsynth
def test_a_silent_file_and_missing_soundfont_are_clear_errors(tmp_path: Path) -> None:
    import miditoolkit

    empty = miditoolkit.MidiFile()
    empty.instruments.append(miditoolkit.Instrument(program=0))
    empty.max_tick = 480 * 8
    empty.dump(str(tmp_path / "empty.mid"))
    with pytest.raises(RenderError, match="silent|fluidsynth failed"):
        midi_to_wav(tmp_path / "empty.mid", tmp_path / "empty.wav", find_soundfont())
    assert not (tmp_path / "empty.wav").exists()
    with pytest.raises(RenderError, match="soundfont not found"):
        find_soundfont(tmp_path / "none.sf2")
    result = CliRunner().invoke(main, ["render", str(m21_path("bach/bwv66.6.mxl")), "--soundfont", str(tmp_path / "x.sf2"), "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 1 and "soundfont not found" in result.output


def test_a_non_wav_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"not a wav")
    with pytest.raises(RenderError, match="not a readable WAV"):
        wav_peak(tmp_path / "x.wav")


@pytest.mark.corpus
def test_render_reads_and_engraves_under_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(*args: object) -> None:  # verovio on a hostile page, say
        time.sleep(60)

    monkeypatch.setattr("gnm_model.render.musicxml_to_svg", hang)
    font = tmp_path / "x.sf2"
    font.write_bytes(b"")  # never reached
    source = m21_path("bach/bwv66.6.mxl")
    started = time.monotonic()
    result = CliRunner().invoke(main, ["render", str(source), "--soundfont", str(font), "--out", str(tmp_path / "out"), "--timeout", "2"])  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert result.output.strip() == f"gnm: error: {source}: timeout (still running after 2 s)"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left
