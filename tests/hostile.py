"""Crafted hostile inputs for the readers (issue 7): each writes one file and returns its path."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container><rootfiles><rootfile full-path="{name}" media-type="application/vnd.recordare.musicxml+xml"/></rootfiles></container>
"""
SCORE_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
PART = (
    '<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>{text}</part-name>'
    '</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>'
    "<time><beats>4</beats><beat-type>4</beat-type></time></attributes><note><pitch><step>C</step>"
    "<octave>4</octave></pitch><duration>4</duration></note></measure></part></score-partwise>"
)


def billion_laughs(folder: Path) -> Path:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    ]
    doctype = "<!DOCTYPE score-partwise [" + "".join(entities) + "]>"
    path = folder / "billion_laughs.musicxml"
    path.write_text(SCORE_HEAD + doctype + PART.format(text="&lol9;"))
    return path


def external_entity(folder: Path) -> Path:
    secret = folder / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = f'<!DOCTYPE score-partwise [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    path = folder / "external_entity.musicxml"
    path.write_text(SCORE_HEAD + doctype + PART.format(text="&xxe;"))
    return path


def deep_nesting(folder: Path) -> Path:
    path = folder / "deep.musicxml"
    path.write_text(
        SCORE_HEAD + "<score-partwise>" + "<a>" * 200_000 + "</a>" * 200_000 + "</score-partwise>"
    )
    return path


def zip_bomb(folder: Path) -> Path:
    path = folder / "bomb.mxl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("META-INF/container.xml", CONTAINER.format(name="score.xml"))
        # 2 GiB of spaces inside a valid document start: compresses to about 2 MB.
        with z.open("score.xml", "w", force_zip64=True) as member:
            member.write(SCORE_HEAD.encode() + b"<score-partwise>")
            block = b" " * (1 << 24)
            for _ in range(128):
                member.write(block)
            member.write(b"</score-partwise>")
    return path


def zip_slip(folder: Path) -> Path:
    path = folder / "slip.mxl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/container.xml", CONTAINER.format(name="../../evil.xml"))
        z.writestr("../../evil.xml", SCORE_HEAD + PART.format(text="evil"))
    return path


def _midi(tracks: list[bytes], division: int = 480) -> bytes:
    head = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), division)
    return head + b"".join(tracks)


def _track(events: bytes, declared: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">I", declared if declared is not None else len(events)) + events


NOTE = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"  # C4 for 480 ticks
END = b"\x00\xff\x2f\x00"


def midi_absurd_track_length(folder: Path) -> Path:
    path = folder / "absurd_track.mid"
    path.write_bytes(_midi([_track(NOTE + END, declared=0xFFFFFFF0)]))
    return path


def midi_tempo_zero(folder: Path) -> Path:
    path = folder / "tempo_zero.mid"
    path.write_bytes(_midi([_track(b"\x00\xff\x51\x03\x00\x00\x00" + NOTE + END)]))
    return path


def midi_huge_division(folder: Path) -> Path:
    path = folder / "huge_division.mid"
    path.write_bytes(_midi([_track(NOTE + END)], division=0x7FFF))  # largest metrical division
    return path


def midi_huge_ticks(folder: Path) -> Path:
    # A note lasting about 10**9 ticks (variable-length quantity 0x83 0xDC 0xEB 0x94 0x00).
    path = folder / "huge_ticks.mid"
    events = b"\x00\x90\x3c\x40" + bytes([0x83, 0xDC, 0xEB, 0x94, 0x00]) + b"\x80\x3c\x00" + END
    path.write_bytes(_midi([_track(events)], division=1))
    return path


def abc_megabyte_line(folder: Path) -> Path:
    path = folder / "long_line.abc"
    path.write_text("X:1\nT:long\nM:4/4\nL:1/8\nK:C\n" + "CDEF GABc " * 100_000 + "\n")
    return path


def midi_sparse(folder: Path) -> Path:
    # A valid one-note file made 2 GiB long by a hole: no disk, but reading it all takes 2 GiB.
    path = folder / "sparse.mid"
    with path.open("wb") as fh:
        fh.write(_midi([_track(NOTE + END)]))
        fh.truncate(2 * 1024**3)
    return path


def musicxml_overfull_bar(folder: Path) -> Path:
    # One 4/4 bar holding 4,001 quarter notes.
    notes = "<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration></note>"
    head, tail = PART.format(text="overfull").split("<note>", 1)
    path = folder / "overfull.musicxml"
    path.write_text(SCORE_HEAD + head + notes * 4001 + tail.split("</note>", 1)[1])
    return path


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "billion_laughs": billion_laughs,
    "external_entity": external_entity,
    "deep_nesting": deep_nesting,
    "zip_bomb": zip_bomb,
    "zip_slip": zip_slip,
    "midi_absurd_track_length": midi_absurd_track_length,
    "midi_tempo_zero": midi_tempo_zero,
    "midi_huge_division": midi_huge_division,
    "midi_huge_ticks": midi_huge_ticks,
    "abc_megabyte_line": abc_megabyte_line,
    "midi_sparse": midi_sparse,
    "musicxml_overfull_bar": musicxml_overfull_bar,
}


def yaml_alias_bomb(folder: Path) -> Path:
    """A corpus declaration whose description is nine nested aliases: a billion strings."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = folder / "bomb.yaml"
    path.write_text(
        "name: bomb\n" + "\n".join(lines) + "\ndescription: *l9\n"
        "source: {kind: music21, include: ['bach/*.mxl']}\n"
        "genre: classical\nlicence: CC0\nredistributable: true\npriority: 1\n"
    )
    return path


def mutate(data: bytes, seed: int) -> bytes:
    """One random corruption of a file's bytes: truncation, bit flips or a corrupted header."""
    import random

    rng = random.Random(seed)
    kind = rng.choice(["truncate", "flip", "header"])
    if not data:
        return data
    if kind == "truncate":
        return data[: rng.randrange(len(data))]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    for i in range(min(len(out), rng.randint(1, 32))):  # header: overwrite the first bytes
        out[i] = rng.randrange(256)
    return bytes(out)
