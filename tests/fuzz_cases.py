"""Fuzz cases for every input family: mutants of real files and structured hostile inputs.

A case is a `Case(family, label, make)`: `make(folder)` writes one input file into `folder` and
returns its path. `cases(seeds, count, seed)` yields a deterministic stream of cases over the six
families (musicxml, mxl, kern, abc, midi, declaration); `probe(path)` reads one the way the build
does (ingest's `parse_job`, or the declaration loader) and names the outcome. `bench/fuzz.py`
runs tens of thousands through the isolated executor; tests/test_fuzz.py samples a few hundred.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import resource
import struct
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.hostile import CONTAINER, HOSTILE, SCORE_HEAD, mutate

FAMILIES = ("musicxml", "mxl", "kern", "abc", "midi", "declaration")
SUFFIX = {"musicxml": ".musicxml", "mxl": ".mxl", "kern": ".krn", "abc": ".abc", "midi": ".mid",
          "declaration": ".yaml"}  # fmt: skip
# Numbers a mutant puts where the file had one: zero, negative, not a number, infinite, huge.
HOSTILE_NUMBERS = ("0", "-1", "-4", "NaN", "nan", "inf", "-inf", "1e308", "99999999999999999999",
                   "1000000000", "3/0", "0/0", "", "0.0000001")  # fmt: skip
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Case:
    """One fuzz input: its family, a readable label and the function that writes it."""

    family: str
    label: str
    make: Callable[[Path], Path]


# --- mutants of real files ------------------------------------------------------------------


def mutate_text(data: bytes, seed: int) -> bytes:
    """Byte-level corruption (`hostile.mutate`), or, for text formats, numbers made hostile,
    a block spliced, deleted or repeated."""
    rng = random.Random(seed)
    kind = rng.choice(["bytes", "numbers", "splice", "delete", "repeat"])
    if kind == "bytes" or not data:
        return mutate(data, seed)
    if kind == "numbers":
        spans = [m.span() for m in NUMBER.finditer(data)]
        if not spans:
            return mutate(data, seed)
        out = bytearray(data)
        for start, end in sorted(rng.sample(spans, min(len(spans), rng.randint(1, 8))))[::-1]:
            out[start:end] = rng.choice(HOSTILE_NUMBERS).encode()
        return bytes(out)
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.randint(1, 4096))
    if kind == "splice":
        at = rng.randrange(len(data))
        return data[:at] + data[start:end] + data[at:]
    if kind == "delete":
        return data[:start] + data[end:]
    return data[:end] + data[start:end] * rng.randint(2, 200) + data[end:]


def _mxl_member(data: bytes) -> tuple[str, bytes] | None:
    """The MusicXML document of a compressed file (its first .xml member other than the
    container), or None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.endswith((".xml", ".musicxml")) and not name.startswith("META-INF"):
                    return name, archive.read(name)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return None


def _zipped(name: str, document: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", CONTAINER.format(name=name))
        archive.writestr(name, document)
    return buffer.getvalue()


def mutant(family: str, source: Path, seed: int) -> Case:
    """A corrupted copy of a real file (an .mxl's document is mutated inside a valid zip
    half of the time, so the reader sees hostile XML, not only a broken archive)."""

    def make(folder: Path) -> Path:
        data = source.read_bytes()
        member = _mxl_member(data) if family == "mxl" and seed % 2 else None
        if member is not None:
            out = _zipped(member[0], mutate_text(member[1], seed))
        else:
            out = mutate_text(data, seed)
        # a declaration's `name` must equal its file name: keep the seed's
        name = source.name if family == "declaration" else f"mutant{SUFFIX[family]}"
        path = folder / name
        path.write_bytes(out)
        return path

    return Case(family, f"mutant {seed} of {source.name}", make)


# --- structured hostile inputs --------------------------------------------------------------


def _musicxml(
    *,
    divisions: str = "1",
    duration: str = "4",
    beats: str = "4",
    beat_type: str = "4",
    notes: str = "",
    parts: int = 1,
    direction: str = "",
) -> bytes:
    note = (
        notes
        or f"<note><pitch><step>C</step><octave>4</octave></pitch><duration>{duration}</duration></note>"
    )
    part_list = "".join(
        f'<score-part id="P{i}"><part-name>p{i}</part-name></score-part>' for i in range(parts)
    )
    body = "".join(
        f'<part id="P{i}"><measure number="1"><attributes><divisions>{divisions}</divisions>'
        f"<time><beats>{beats}</beats><beat-type>{beat_type}</beat-type></time></attributes>"
        f"{direction}{note}</measure></part>"
        for i in range(parts)
    )
    return (SCORE_HEAD + f'<score-partwise version="3.1"><part-list>{part_list}</part-list>{body}'
            "</score-partwise>").encode()  # fmt: skip


def _pitch(step: str = "C", octave: str = "4", alter: str = "") -> str:
    alter_tag = f"<alter>{alter}</alter>" if alter else ""
    return f"<pitch><step>{step}</step>{alter_tag}<octave>{octave}</octave></pitch>"


def _musicxml_cases() -> dict[str, bytes]:
    chord = "".join(
        f"<note>{'<chord/>' if i else ''}{_pitch(octave=str(1 + i % 7))}<duration>4</duration></note>"
        for i in range(20_000)
    )
    tuplet = ("<note>" + _pitch() + "<duration>4</duration><time-modification><actual-notes>{a}"
              "</actual-notes><normal-notes>{n}</normal-notes></time-modification></note>")  # fmt: skip
    out = {f"divisions {v}": _musicxml(divisions=v) for v in ("0", "-1", "NaN", "inf", "1e308", "")}
    out |= {f"duration {v}": _musicxml(duration=v) for v in ("0", "-4", "NaN", "inf", "1e308")}
    out |= {f"time {b}/{t}": _musicxml(beats=b, beat_type=t)
            for b, t in (("0", "0"), ("3", "0"), ("0", "4"), ("-3", "4"), ("1000000000", "4"),
                         ("3+2+x", "8"), ("NaN", "4"))}  # fmt: skip
    out["backup past the bar start"] = _musicxml(
        notes="<note>" + _pitch() + "<duration>4</duration></note><backup><duration>100</duration>"
        "</backup><note>" + _pitch("E") + "<duration>4</duration></note>"
    )
    out["forward 1e12"] = _musicxml(
        notes="<forward><duration>1000000000000</duration></forward><note>" + _pitch()
        + "<duration>4</duration></note>"
    )  # fmt: skip
    out |= {f"tuplet {a}:{n}": _musicxml(notes=tuplet.format(a=a, n=n))
            for a, n in (("1000000000", "1"), ("0", "2"), ("3", "0"), ("-3", "2"))}  # fmt: skip
    out["chord of 20000 notes"] = _musicxml(notes=chord)
    out["2000 parts"] = _musicxml(parts=2000)
    out |= {f"alter {v}": _musicxml(notes=f"<note>{_pitch(alter=v)}<duration>4</duration></note>")
            for v in ("NaN", "1000000000", "-inf")}  # fmt: skip
    out |= {f"octave {v}": _musicxml(notes=f"<note>{_pitch(octave=v)}<duration>4</duration></note>")
            for v in ("1000000000", "-1000000000", "x")}  # fmt: skip
    out |= {f"tempo {v}": _musicxml(direction=f'<sound tempo="{v}"/>')
            for v in ("0", "-1", "NaN", "1e308")}  # fmt: skip
    out["transpose 1e9"] = _musicxml(
        notes="<attributes><transpose><chromatic>1000000000</chromatic></transpose></attributes>"
        "<note>" + _pitch() + "<duration>4</duration></note>"
    )
    return out


def _kern(body: str, header: str = "**kern\n*M4/4\n") -> bytes:
    return (header + body + "*-\n").encode()


def _kern_cases() -> dict[str, bytes]:
    explode = "".join("\t".join(["*^"] * (1 << k)) + "\n" for k in range(16))
    out = {
        "spine explosion to 65536 spines": _kern(explode + "\t".join(["4c"] * (1 << 16)) + "\n"),
        "chord of 10000 notes": _kern(" ".join(["4c"] * 10_000) + "\n"),
        "merge a single spine": _kern("*v\n4c\n"),
        "data after every spine ended": b"**kern\n4c\n*-\n4d\n4e\n",
        "unmatched ties": _kern("[4c\n4d]\n]4e\n[[[[4f\n"),
    }
    out |= {f"duration {d}": _kern(f"{d}c\n=1\n4d\n")
            for d in ("0", "1%0", "0%0", "3%1000000000", "1000000000", "-4", "4" + "." * 10_000,
                      "00000000000000000000000000000000001")}  # fmt: skip
    out |= {f"meter {m}": _kern("4c\n", header=f"**kern\n*M{m}\n")
            for m in ("0/0", "3/0", "0/4", "1000000000/1", "-3/4", "3/4%0")}  # fmt: skip
    out |= {f"tempo {t}": _kern("4c\n", header=f"**kern\n*MM{t}\n") for t in ("0", "-5", "1e308")}
    return out


def _abc(body: str, fields: str = "M:4/4\nL:1/8\n") -> bytes:
    return f"X:1\nT:t\n{fields}K:C\n{body}\n".encode()


def _abc_cases() -> dict[str, bytes]:
    out = {f"fields {f!r}": _abc("CDEF GABc|", f)
           for f in ("M:0/0\n", "M:3/0\n", "M:1000000000/1\n", "L:1/0\n", "L:0/1\n", "L:1/1000000000\n",
                     "Q:0\n", "Q:1/4=0\n", "Q:1/0=120\n", "M:C|\nL:-1/8\n")}  # fmt: skip
    out |= {f"body {b[:24]!r}": _abc(b)
            for b in ("(0CDE|", "(99999CDEF|", "(3:0:3CDE|", "C0 D/0 E99999999|", "C>>>>>>>>>>>>>>>>D|",
                      "[" * 5000 + "C" + "]" * 5000 + "|", '"unclosed chord symbol C D E|',
                      "{unclosed grace CDE|", "C-" * 20_000 + "C|", "^^^^^^^^^^C __________D|",
                      "C" * 200_000 + "|", "!" * 10_000 + "C|", "[V:1]C|[V:2]D|" * 2000,
                      "|:" * 5000 + "C" + ":|" * 5000, "z1000000000|C|")}  # fmt: skip
    out["1000 voices"] = ("X:1\nT:t\nM:4/4\nL:1/8\nK:C\n"
                          + "".join(f"V:{i}\nCDEF|\n" for i in range(1000))).encode()  # fmt: skip
    out["K: garbage"] = _abc("CDEF|", "M:4/4\nK:H# lydian dorian 1000000000\n")
    return out


def _midi(
    tracks: Sequence[bytes], *, fmt: int = 1, division: int = 480, count: int | None = None
) -> bytes:
    head = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks) if count is None else count, division)
    return head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


NOTE = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"
END = b"\x00\xff\x2f\x00"


def _midi_cases() -> dict[str, bytes]:
    song = _midi([NOTE + END])
    return {
        "SMPTE division": _midi([NOTE + END], division=0xE728),
        "division 0": _midi([NOTE + END], division=0),
        "format 2": _midi([NOTE + END, NOTE + END], fmt=2),
        "format 7": _midi([NOTE + END], fmt=7),
        "gzip named .mid": gzip.compress(song),
        "no tracks": _midi([]),
        "header says 65535 tracks": _midi([NOTE + END], count=65535),
        "10000 tracks": _midi([NOTE + END] * 10_000),
        "note-on without note-off": _midi([b"\x00\x90\x3c\x40" * 5000 + END]),
        "running status before any status": _midi([b"\x00\x3c\x40" + NOTE + END]),
        "sysex of 2^28 bytes declared": _midi([b"\x00\xf0\x81\x80\x80\x80\x00" + END]),
        "meta of 2^28 bytes declared": _midi([b"\x00\xff\x01\x81\x80\x80\x80\x00abc" + END]),
        "100000 tempo changes": _midi([b"\x00\xff\x51\x03\x07\xa1\x20" * 100_000 + NOTE + END]),
        "header chunk of 2^31 bytes": b"MThd"
        + struct.pack(">IHHH", 1 << 31, 1, 1, 480)
        + song[14:],
        "no end of track": _midi([NOTE]),
    }


DECLARATION = """name: fuzz
description: a declaration under fuzzing
source:
  kind: directory
  path: corpus
  include: ["**/*.mid", "*.krn"]
genre: classical
composer_from_path:
  pattern: "^(?P<composer>[^/]+)/"
  map: {bach: Bach}
licence: CC0
redistributable: true
priority: 10
"""


def _declaration_cases() -> dict[str, bytes]:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    pattern = '"^(?P<composer>[^/]+)/"'
    big_map = "{" + ", ".join(f"c{i}: C{i}" for i in range(100_000)) + "}"
    edits = {
        "catastrophic composer_pattern": (pattern, '"^(?P<composer>(a+)+)$"'),
        "nested quantifier pattern": (pattern, '"(?P<composer>(.*a){30})"'),
        "10 MB description": ("a declaration under fuzzing", "x" * 10_000_000),
        "100000-entry composer map": ("{bach: Bach}", big_map),
        "python object tag": ("genre: classical", "genre: !!python/object/apply:os.system [id]"),
        "path outside the data root": ("path: corpus", "path: ../../../../"),
        "include every file": ('["**/*.mid", "*.krn"]', '["/**/*", "../**/*"]'),
    }
    out = {name: DECLARATION.replace(old, new).encode() for name, (old, new) in edits.items()}
    out["yaml alias bomb"] = (DECLARATION + laughs).encode()
    out["yaml nested 100000 deep"] = ("name: " + "[" * 100_000 + "]" * 100_000 + "\n").encode()
    out["not UTF-8"] = DECLARATION.encode().replace(b"fuzz", b"\xff\xfe\xfd")
    return out


STRUCTURED: Mapping[str, Callable[[], dict[str, bytes]]] = {
    "musicxml": _musicxml_cases, "kern": _kern_cases, "abc": _abc_cases, "midi": _midi_cases,
    "declaration": _declaration_cases,
}  # fmt: skip


def _written(family: str, name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / ("fuzz.yaml" if family == "declaration" else f"case{SUFFIX[family]}")
        path.write_bytes(_zipped("score.xml", data) if family == "mxl" else data)
        return path

    return make


def structured() -> list[Case]:
    """Every crafted hostile case: per family (the MusicXML ones zipped again as .mxl), plus
    tests/hostile.py's."""
    out: list[Case] = []
    for family, build in STRUCTURED.items():
        for name, data in build().items():
            out.append(Case(family, name, _written(family, name, data)))
            if family == "musicxml":
                out.append(Case("mxl", name, _written("mxl", name, data)))
    for name, make in HOSTILE.items():
        prefix = name.split("_")[0]
        family = {"midi": "midi", "zip": "mxl", "abc": "abc"}.get(prefix, "musicxml")
        out.append(Case(family, name, make))
    return out


def seed_files(data_root: Path | None, scratch: Path) -> dict[str, list[Path]]:
    """Real files per family: music21's corpus, ../shared/data when present (else a generated
    MIDI file, written into `scratch`), our corpus declarations."""
    from music21 import corpus

    m21 = {"musicxml": ["ciconia/quod_jactatur.xml", "bach/bwv67.4.xml", "corelli/opus3no1/1grave.xml"],
           "mxl": ["bach/bwv66.6.mxl", "mozart/k155/movement2.mxl"],
           "kern": ["bach/bwv277.krn", "beethoven/opus18no1/movement1.krn"],
           "abc": ["ryansMammoth/AcaciaReel.abc", "airdsAirs/book1.abc"]}  # fmt: skip
    out: dict[str, list[Path]] = {f: [] for f in FAMILIES}
    for family, works in m21.items():
        for work in works:
            path = Path(str(corpus.getWork(work)))
            out[family].append(path)
    if data_root is not None and data_root.is_dir():
        for family, pattern in (("midi", "pop909/00*/00*.mid"), ("midi", "asap/**/*.mid"),
                                ("musicxml", "asap/**/*.musicxml"), ("mxl", "openewld/**/*.mxl"),
                                ("abc", "nottingham/**/*.abc"), ("kern", "sapp-chopin-preludes/*.krn")):  # fmt: skip
            out[family] += sorted(data_root.glob(pattern))[:2]
    repo = Path(__file__).resolve().parents[1]
    out["declaration"] = sorted((repo / "corpora").glob("*.yaml"))[:6]
    if not out["midi"]:  # no shared data: a generated MIDI file stands in
        from pipeline.synthetic import midi_bytes, piece

        scratch.mkdir(parents=True, exist_ok=True)
        out["midi"] = [scratch / "synthetic.mid"]
        out["midi"][0].write_bytes(midi_bytes(piece(0, 0)))
    return {f: paths for f, paths in out.items() if paths}


def cases(seeds: Mapping[str, Sequence[Path]], count: int, seed: int = 0) -> Iterator[Case]:
    """`count` cases: every structured case first, then mutants, families in turn (seeded)."""
    fixed = structured()
    yield from fixed[:count]
    rng = random.Random(seed)
    families = [f for f in FAMILIES if seeds.get(f)]
    for k in range(max(0, count - len(fixed))):
        family = families[k % len(families)]
        yield mutant(family, rng.choice(list(seeds[family])), rng.randrange(1 << 30))


# --- reading one case -----------------------------------------------------------------------


def probe(path: Path) -> tuple[str, float, int]:
    """Read one case as the build would: (outcome, seconds, peak RSS in KiB of this process).

    The outcome is `parsed`, `items:<reason>` (a collection with failed pieces), the
    `reason` of a GnmError (a specific refusal), or `unhandled:<Type>` for any other exception:
    a bug. Runs inside an isolated child; timeouts, memory and crashes are the executor's.
    """
    from pipeline.errors import CorpusError, GnmError
    from pipeline.readers.common import ItemFailure
    from pipeline.stages.ingest_read import ParseJob, parse_job

    started = time.monotonic()
    try:
        if path.suffix == ".yaml":
            outcome = _probe_declaration(path)
        else:
            items = parse_job(ParseJob(str(path), False, None))
            failures = sorted({x.reason for x in items if isinstance(x, ItemFailure)})
            outcome = "parsed" if not failures else f"items:{failures[0]}"
    except CorpusError:
        outcome = "invalid_declaration"
    except GnmError as exc:
        outcome = str(getattr(exc, "reason", None) or type(exc).__name__)
    except MemoryError:
        raise  # the executor's memory_limit
    except Exception as exc:  # a reader bug: named, never hidden
        outcome = f"unhandled:{type(exc).__name__}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return outcome, time.monotonic() - started, peak


def _probe_declaration(path: Path) -> str:
    """Load, look a composer up and list the files (of a folder made for the declaration)."""
    from pipeline.corpora import load_declaration

    decl = load_declaration(path)
    root = path.parent / "root"
    folder = (root / (decl.source_path or "corpus")).resolve()
    if folder.is_relative_to(root.resolve()):  # a path out of the root is the listing's to refuse
        (folder / "bach").mkdir(parents=True, exist_ok=True)
        (folder / "bach" / "a.krn").write_text("**kern\n4c\n*-\n")
    decl.composer_for("a" * 40 + "!")
    decl.composer_for("bach/" + "a" * 40)
    decl.files(root)  # a CorpusError here too is `invalid_declaration`
    return "parsed"
