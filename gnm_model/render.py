"""Rendering: audio (WAV through fluidsynth and a General MIDI soundfont) and an engraved first
page (SVG through verovio from MusicXML).

Both tools come from packages: fluidsynth and a soundfont from Debian (`apt-get install fluidsynth
timgm6mb-soundfont`, which scripts/setup.sh and .ci/run do), verovio from PyPI. A missing tool or
soundfont is a RenderError that says what to install; a WAV file that comes out silent is one too.
"""

from __future__ import annotations

import array
import shutil
import subprocess
import wave
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pipeline.errors import GnmError
from pipeline.executor import Limits
from pipeline.io.atomic import atomic_path, write_text_atomic

SOUNDFONTS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)
SAMPLE_RATE = 44_100
SILENCE = 1e-3  # peak below -60 dBFS: only fluidsynth's dither, no notes


class RenderError(GnmError):
    """A renderer or soundfont is missing, or its output is unusable."""


@dataclass(frozen=True)
class Audio:
    """A written WAV file and what is in it."""

    path: Path
    seconds: float
    peak: float  # largest absolute sample, 0..1


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The soundfont to use: `explicit`, else the first General MIDI soundfont installed."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise RenderError(f"{path}: soundfont not found")
        return path
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise RenderError(
        "no General MIDI soundfont found (apt-get install timgm6mb-soundfont, or give --soundfont)"
    )


def wav_peak(path: Path) -> tuple[float, float]:
    """(seconds, peak amplitude in 0..1) of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            frames = wav.readframes(wav.getnframes())
            seconds = wav.getnframes() / wav.getframerate()
            width = wav.getsampwidth()
    except (wave.Error, EOFError, OSError) as exc:
        raise RenderError(f"{path}: not a readable WAV file ({exc})") from None
    if width != 2:
        raise RenderError(f"{path}: {8 * width}-bit samples, expected 16-bit PCM")
    samples = array.array("h", frames)
    peak = max((abs(s) for s in samples), default=0) / 32768
    return seconds, peak


def midi_to_wav(midi: Path, wav: Path, soundfont: Path, timeout_s: float = 300) -> Audio:
    """Synthesize `midi` into `wav` (16-bit, 44.1 kHz); RenderError when silent."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise RenderError("fluidsynth is not installed (apt-get install fluidsynth)")
    wav.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(wav) as tmp:  # removed when fluidsynth fails or the audio is silent
        command = [binary, "-ni", "-q", "-g", "0.8", "-r", str(SAMPLE_RATE), "-O", "s16", "-T", "wav",
                   "-F", str(tmp), str(soundfont), str(midi)]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"{midi}: fluidsynth ran past {timeout_s:.0f} s") from None
        if done.returncode or not tmp.is_file():
            raise RenderError(
                f"{midi}: fluidsynth failed: {(done.stderr or done.stdout).strip()[:200]}"
            )
        seconds, peak = wav_peak(tmp)
        if peak < SILENCE:
            raise RenderError(
                f"{midi}: the rendered audio is silent (no notes, or a broken soundfont)"
            )
    return Audio(wav, seconds, peak)


def musicxml_to_svg(musicxml: Path, svg: Path, page: int = 1) -> Path:
    """Engrave `page` of a MusicXML file into SVG with verovio."""
    try:
        import verovio
    except ImportError:
        raise RenderError("verovio is not installed (pip install verovio)") from None
    toolkit = verovio.toolkit()
    toolkit.setOptions({"pageWidth": 2100, "pageHeight": 2970, "scale": 40, "footer": "none"})
    if not toolkit.loadFile(str(musicxml)):
        raise RenderError(f"{musicxml}: verovio could not read it")
    if page > toolkit.getPageCount():
        raise RenderError(f"{musicxml}: no page {page} (it has {toolkit.getPageCount()})")
    write_text_atomic(svg, toolkit.renderToSVG(page))
    return svg


@dataclass(frozen=True)
class Engraved:
    """The score files made for one source: MIDI and MusicXML (the source itself where it is
    one) and the first page as SVG."""

    midi: Path
    musicxml: Path
    svg: Path


@dataclass(frozen=True)
class Rendered:
    """The files made for one score."""

    midi: Path
    musicxml: Path
    wav: Audio
    svg: Path


def engrave(source: Path, out_dir: Path) -> Engraved:
    """Read a score file (MIDI, MusicXML or any readable format) as far as its first page in SVG."""
    from pipeline.music.meter import normalize_meters
    from pipeline.readers import read_scores
    from pipeline.writers import write_score

    out_dir.mkdir(parents=True, exist_ok=True)
    midi, musicxml = engraved_paths(source, out_dir)
    if midi != source or musicxml != source:
        # MusicXML needs full bars of written meters: normalise (a MIDI file's pickup, say).
        score = normalize_meters(read_scores(source)[0])
        if midi != source:
            write_score(score, midi)
        if musicxml != source:
            write_score(score, musicxml)
    return Engraved(midi, musicxml, musicxml_to_svg(musicxml, out_dir / f"{source.stem}.svg"))


def engraved_paths(source: Path, out_dir: Path) -> tuple[Path, Path]:
    """The MIDI and MusicXML files `engrave` uses for `source`: itself, or written to `out_dir`."""
    suffix = source.suffix.lower()
    midi = source if suffix in (".mid", ".midi") else out_dir / f"{source.stem}.mid"
    musicxml = source if suffix in (".musicxml", ".xml") else out_dir / f"{source.stem}.musicxml"
    return midi, musicxml


def render(source: Path, out_dir: Path, soundfont: Path, limits: Limits | None = None) -> Rendered:
    """WAV and first-page SVG of a score file (MIDI, MusicXML or any readable format).

    With `limits`, reading and engraving run in ingest's isolated child under them (a hostile
    file ends as a one-line GnmError); fluidsynth runs as its own process with its own timeout.
    """
    if limits is None:
        done = engrave(source, out_dir)
    else:
        from pipeline.cli.limits import run_limited

        written = [p for p in engraved_paths(source, out_dir) if p != source]
        done = run_limited(partial(engrave, out_dir=out_dir), source, limits, source, written)
    wav = midi_to_wav(done.midi, out_dir / f"{source.stem}.wav", soundfont)
    return Rendered(done.midi, done.musicxml, wav, done.svg)
