"""Byte-level look at a Standard MIDI File: where mido (the reference's parser) reads differently.

symusic parses the notes. This module frames the chunks as mido does (`frame`), takes a quick
look at each track with byte searches (`suspect`), and where that finds a reason walks the
track's events as mido would (`scan_track`), without building them: runs of channel messages
are matched by one regular expression, and only meta, system-exclusive and program-change
events are handled in Python. The walk reports what the symusic reader needs to reproduce
mido/miditoolkit: the meta events in file order (symusic sorts them by tick, perhaps not
stably), track names as latin-1 with their place relative to the notes, and whether a program
change follows a note-on (symusic files a note under the program at its note-on, miditoolkit at
its note-off). What mido refuses raises `bad_midi`; what the walk cannot follow raises
`Unsupported`, so that the reference reads the file.

Not seen without the walk: a data byte over 127 in a message symusic does not range-check (key
or channel pressure, system messages), which mido refuses; such a corrupt file is read.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ScoreParseError, Unsupported

MAX_MESSAGE_LENGTH = 1_000_000  # mido refuses longer meta and sysex payloads

_D = rb"[\x80-\xff]{0,3}+[\x00-\x7f]"  # a delta time (4 bytes at most: symusic's limit)
# Channel messages other than program changes, each with its running-status followers. Possessive
# (the grammar is deterministic) and without capturing groups: CPython 3.11's re mishandles
# captures under possessive repeats (SystemError "span of capturing group is wrong").
_RUN = (
    rb"(?:" + _D + rb"(?:[\x80-\xbf\xe0-\xef][\x00-\x7f]{2}(?:" + _D + rb"[\x00-\x7f]{2})*+"
    rb"|[\xd0-\xdf][\x00-\x7f](?:" + _D + rb"[\x00-\x7f])*+))*+"
)
RUN = re.compile(_RUN)
# The same, greedy, capturing the last explicit status of a run (group 1 or 2): only needed when
# running status resumes after a meta or system-exclusive event, which is rare.
LAST_STATUS = re.compile(
    _RUN.replace(rb"+", rb"")
    .replace(rb"(?:[\x80-\xbf\xe0-\xef]", rb"(?:([\x80-\xbf\xe0-\xef])")
    .replace(rb"|[\xd0-\xdf]", rb"|([\xd0-\xdf])")
)
RUNNING = {
    2: re.compile(rb"(?:" + _D + rb"[\x00-\x7f]{2})*+"),
    1: re.compile(rb"(?:" + _D + rb"[\x00-\x7f])*+"),
}
NOTE_ON_STATUS = re.compile(rb"[\x90-\x9f]")  # may hit a delta-time byte: only ever cautious
# Data bytes after each status of system messages mido knows (others: "undefined status byte").
SYSTEM_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}
# The quick look (`suspect`): byte patterns that may, and patterns that cannot, mean trouble.
# Each may also hit a delta-time byte or text, which only costs the full scan.
SUSPECT_META = re.compile(  # meta events shorter than mido decodes, or a bad SMPTE frame rate
    rb"\xff(?:\x00\x01|\x20\x00|\x51[\x00-\x02]|\x54[\x00-\x04]|\x54\x05[\x80-\xff]"
    rb"|\x58[\x00-\x03]|\x58\x04.[\x08-\xff]|\x59[\x00-\x01])",
    re.DOTALL,
)
END_OF_TRACK = b"\xff\x2f\x00"
# Byte classes for `suspect`: d data (< 0x80), N note-on status, C program-change status.
BYTE_CLASS = bytes(
    ord("d") if b < 0x80 else ord("N") if b >> 4 == 0x9 else ord("C") if b >> 4 == 0xC else ord("x")
    for b in range(256)
)
# Shortest payload mido decodes per meta type (shorter: IndexError while reading the file).
META_MIN = {0x20: 1, 0x51: 3, 0x54: 5, 0x58: 4, 0x59: 2}


@dataclass
class TrackScan:
    """What one track holds, in file order."""

    tempos: list[int] = field(default_factory=list)  # microseconds per quarter
    time_signatures: list[tuple[int, int]] = field(default_factory=list)  # (numerator, 2**d)
    key_signatures: list[tuple[int, int]] = field(default_factory=list)  # (sharps, minor)
    names: list[tuple[bool, str]] = field(default_factory=list)  # (after a note-on, latin-1)
    program_change_after_note: bool = False


def bad_midi(path: Path, detail: str) -> ScoreParseError:
    """The reference's error for a file mido cannot read."""
    detail = " ".join(detail.split())
    return ScoreParseError(f"{path}: not a readable MIDI file: {detail[:200]}", "bad_midi")


def frame(data: bytes, path: Path) -> tuple[int, list[tuple[int, int]]]:
    """Ticks per beat and the (start, end) byte range of every track mido would read."""
    if len(data) < 8 or data[:4] != b"MThd":
        raise bad_midi(path, "MThd not found. Probably not a MIDI file")
    (size,) = struct.unpack_from(">I", data, 4)
    if size < 6 or len(data) < 8 + size:
        raise bad_midi(path, "truncated header")
    _format, n_tracks, tpb = struct.unpack_from(">hhh", data, 8)  # signed, as mido reads them
    if tpb <= 0:
        raise ScoreParseError(
            f"{path}: MIDI header gives {tpb} ticks per beat (must be positive)", "bad_midi"
        )
    if n_tracks <= 0:  # miditoolkit takes the max over no tracks
        raise bad_midi(path, "the header declares no tracks")
    chunks: list[tuple[int, int]] = []
    pos = 8 + size
    for number in range(n_tracks):  # mido reads exactly the declared tracks, ignores the rest
        if pos + 8 > len(data):
            raise bad_midi(path, f"track {number}: the file ends before its chunk header")
        name, length = struct.unpack_from(">4sI", data, pos)
        if name != b"MTrk":
            raise bad_midi(path, f"track {number}: no MTrk header at start of track")
        if pos + 8 + length > len(data):
            raise bad_midi(path, f"track {number}: its {length} bytes run past the end of the file")
        if length == 0:  # an empty track: miditoolkit takes the max of no event times
            raise bad_midi(path, f"track {number} has no events")
        chunks.append((pos + 8, pos + 8 + length))
        pos += 8 + length
    return tpb, chunks


def suspect(chunk: bytes) -> bool:
    """False when the track certainly holds nothing `scan_track` would report or refuse.

    That is: no meta event too short for mido, nothing after the end of track, no program
    change or track name after the first note-on, at most one track name. Byte searches only
    (C speed): the chunk is translated to byte classes, then searched for class patterns.
    """
    eot = chunk.find(END_OF_TRACK)
    if (eot != -1 and eot + 3 != len(chunk)) or chunk.count(b"\xff\x03") > 1:
        return True
    if SUSPECT_META.search(chunk):  # it matches from a 0xff byte only
        return True
    classes = chunk.translate(BYTE_CLASS)
    first_note = classes.find(b"Ndd")
    if first_note == -1:
        return False
    name = chunk.find(b"\xff\x03")
    return name > first_note or classes.find(b"Cd", first_note) != -1


def _last_status(chunk: bytes, start: int, end: int) -> int:
    """The last explicit status byte of the run of channel messages from `start` to `end`."""
    run = LAST_STATUS.match(chunk, start, end)
    assert run is not None and run.end() == end, "a run matched once matches again"
    return chunk[max(run.start(1), run.start(2))]


def _vlq(chunk: bytes, pos: int, path: Path) -> tuple[int, int]:
    """(value, next position) of the variable-length quantity at `pos`."""
    value = 0
    for k in range(pos, min(pos + 4, len(chunk))):
        byte = chunk[k]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, k + 1
    raise Unsupported("midi:variable-length-quantity", f"{path}: at byte {pos} of a track")


def scan_track(chunk: bytes, path: Path) -> TrackScan:
    """Walk one track's events as mido reads them (see the module docstring)."""
    scan = TrackScan()
    pos, end = 0, len(chunk)
    last: int | None = None  # mido's running status (meta events leave it alone)
    run_span: tuple[int, int] | None = None  # the last run of channel messages
    seen_note = False
    while pos < end:
        run = RUN.match(chunk, pos)
        if run is not None and run.end() > pos:  # (the pattern matches, if only the empty run)
            seen_note = seen_note or bool(NOTE_ON_STATUS.search(chunk, pos, run.end()))
            last, run_span = None, (pos, run.end())  # its last status is found when needed
            pos = run.end()
            if pos >= end:
                break
        _, at = _vlq(chunk, pos, path)  # the delta time: symusic has the ticks
        if at >= end:
            raise Unsupported("midi:event-crosses-chunk-end", str(path))
        status = chunk[at]
        if status < 0x80 and last is None and run_span is not None:
            last = _last_status(chunk, *run_span)
        if status < 0x80:  # running status
            if last is None:
                raise bad_midi(path, "running status without last_status")
            status, data = last, at
        else:
            data = at + 1
            if status != 0xFF:
                last, run_span = status, None
        if status == 0xFF:
            if data >= end:
                raise Unsupported("midi:event-crosses-chunk-end", str(path))
            kind = chunk[data]
            length, start = _vlq(chunk, data + 1, path)
            pos = start + length
            if length > MAX_MESSAGE_LENGTH:
                raise bad_midi(path, f"Message length {length} exceeds maximum length")
            if pos > end:
                raise Unsupported("midi:event-crosses-chunk-end", str(path))
            _meta(scan, kind, chunk[start:pos], seen_note, path)
            if kind == 0x2F and pos < end:  # mido reads on, symusic stops
                raise Unsupported("midi:events-after-end-of-track", str(path))
        elif status in (0xF0, 0xF7):
            length, start = _vlq(chunk, data, path)
            if length > MAX_MESSAGE_LENGTH:
                raise bad_midi(path, f"Message length {length} exceeds maximum length")
            pos = start + length
        else:
            if status < 0xF0:
                size = 1 if 0xC0 <= status <= 0xDF else 2
            elif status in SYSTEM_LENGTH:
                size = SYSTEM_LENGTH[status]
            else:
                raise bad_midi(path, f"undefined status byte 0x{status:02x}")
            pos = data + size
            if pos > end:
                raise Unsupported("midi:event-crosses-chunk-end", str(path))
            if any(b > 127 for b in chunk[data:pos]):
                raise bad_midi(path, "data byte must be in range 0..127")
            if 0xC0 <= status <= 0xCF:
                scan.program_change_after_note |= seen_note
            elif 0x90 <= status <= 0x9F:
                seen_note = True
            if size and data == at and status < 0xF0:  # running status: take its followers too
                follow = RUNNING[size].match(chunk, pos)
                if follow is not None and follow.end() > pos:
                    pos = follow.end()
                    if 0xC0 <= status <= 0xCF:
                        scan.program_change_after_note |= seen_note
                    elif 0x90 <= status <= 0x9F:
                        seen_note = True
    return scan


def _meta(scan: TrackScan, kind: int, payload: bytes, seen_note: bool, path: Path) -> None:
    """Record one meta event as mido decodes it, refusing what mido refuses."""
    if len(payload) < META_MIN.get(kind, 0) or (kind == 0x00 and len(payload) == 1):
        raise bad_midi(path, f"meta event 0x{kind:02x} of {len(payload)} bytes (IndexError)")
    if kind == 0x51:
        scan.tempos.append(int.from_bytes(payload[:3], "big"))
    elif kind == 0x58:
        scan.time_signatures.append((payload[0], 2 ** payload[1]))
    elif kind == 0x59:
        sharps = payload[0] - 256 if payload[0] > 127 else payload[0]
        scan.key_signatures.append((sharps, payload[1]))
    elif kind == 0x03:
        scan.names.append((seen_note, payload.decode("latin-1")))
    elif kind == 0x54 and payload[0] >> 5 > 3:
        raise bad_midi(path, f"SMPTE offset with frame rate code {payload[0] >> 5} (KeyError)")


_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def count_note_ons(data: bytes, path: Path) -> int:
    """Pitched note-ons (velocity > 0, not on the drum channel 10) in the tracks mido reads.

    For verify's source count: the notes a MIDI file writes, without a parser. Raises
    `bad_midi` where `frame` does; a track the walk cannot follow ends its count there (the
    readers refuse such a file, or fall back on the reference, before verify sees it).
    """
    _, chunks = frame(data, path)
    notes = 0
    for start, end in chunks:
        pos, status = start, 0
        while pos < end:
            while pos < end and data[pos] & 0x80:  # the delta time: skip its bytes
                pos += 1
            pos += 1
            if pos >= end:
                break
            byte = data[pos]
            if byte in (0xFF, 0xF0, 0xF7):  # meta or system exclusive: skip the payload
                pos += 2 if byte == 0xFF else 1
                length = 0
                while pos < end and data[pos] & 0x80:
                    length = (length << 7) | (data[pos] & 0x7F)
                    pos += 1
                if pos >= end:
                    break
                pos += 1 + ((length << 7) | data[pos])
                continue
            if byte & 0x80:
                status, pos = byte, pos + 1
            elif not status:
                break  # running status with no status before it: mido refuses the file
            size = _DATA_BYTES.get(status & 0xF0)
            if size is None:  # a system common message inside a track: not followed
                break
            if status & 0xF0 == 0x90 and status & 0x0F != 9 and pos + 1 < end and data[pos + 1]:
                notes += 1
            pos += size
    return notes
