"""Voices of one piece stored as separate tunes of an ABC book: find them in the source text.

Part books store one voice per tune: music21's Josquin books hold `X:1 T:Adieu mes amours
T:Cantus`, `X:2 T:Adieu mes amours T:Altus`, ... Read alone, each tune would pass for a piece.
`find_voice_groups` reads what the text says (a scan of the tunes' `T:` and `V:` fields, no
parse) and ties each voice to the reader's item for it; ingest then merges a group into one
multi-part score or quarantines its tunes (`pipeline.stages.merge_voices`), as the corpus
declares. The groups are stored with the readings, so that policy never needs a reparse.

A group is two or more tunes of one book with the same first title (compared without case,
spacing or trailing punctuation), of which at least one names a voice in its second title
(Cantus, Altus, Tenor, Bassus, Superius, Contratenor, Quintus, Voice 2, ...) or at least two
declare distinct single voices with `V:`. A tune's voice name is that second title, else the
name (or id) of its only `V:` voice, else "" (the top voice of a part book is often unnamed).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.readers.common import X_LINE, ItemFailure, split_abc_tunes
from pipeline.score import Score

# A second title that starts with one of these names a voice (Latin part-book names, modern
# voice ranges, numbered voices). Not "secunda pars" or "Part 2": those name sections of a piece.
VOICE_WORD = re.compile(
    r"""\s*(?:
        cantus | altus | alto | tenor | tenore | bassus | basso | bass | superius | soprano
        | discantus | descant | treble | contratenor | contra | countertenor | medius | vagans
        | triplum | motetus | baritone | quintus | sextus | septimus | octavus
        | (?:quinta | sexta | septima | octava) (?:\s+pars)?
        | voice \s* (?:\d+ | [ivx]+)
    )\b""",
    re.IGNORECASE | re.VERBOSE,
)
_FIELD = re.compile(r"([A-Za-z]):(.*)")
_INLINE_VOICE = re.compile(r"\[V:([^\]]*)\]")
_VOICE_NAME = re.compile(r"""\b(?:name|nm)\s*=\s*(?:"([^"]*)"|(\S+))""")


@dataclass(frozen=True)
class Voice:
    """One tune that is a voice of a piece: its `X:` number, its voice name ("" when it names
    none) and its position in the reader's items for the file (None when the reader gave none)."""

    number: str
    name: str
    index: int | None


@dataclass(frozen=True)
class VoiceGroup:
    """The tunes of one book that are the voices of one piece, in file order, and its title."""

    title: str
    voices: tuple[Voice, ...]


@dataclass(frozen=True)
class _Tune:
    """What one tune's fields say: its first title, voice name, and where the name comes from."""

    number: str
    title: str
    name: str
    named_by_title: bool  # a voice word in the second title (not a `V:` name)


def find_voice_groups(text: str, items: Sequence[Score | ItemFailure]) -> list[VoiceGroup]:
    """The voice groups of an ABC book's `text`, each voice tied to its item in `items`.

    `items` are the reader's pieces for the file (scores and failures), matched to tunes by
    `X:` number (leading zeros ignored: music21 reads `X:0812` as 812), then by order among
    tunes of one number. A single tune, or a book without groups, gives [].
    """
    tunes = [_scan_tune(number, tune) for number, tune in split_abc_tunes(text)]
    if len(tunes) < 2:
        return []
    by_title: dict[str, list[int]] = {}
    for k, tune in enumerate(tunes):
        key = _title_key(tune.title)
        if key:
            by_title.setdefault(key, []).append(k)
    numbers = (i.item if isinstance(i, ItemFailure) else i.meta.collection_item for i in items)
    positions = {slot: k for k, slot in enumerate(_slots(numbers))}
    slots = _slots(t.number for t in tunes)
    groups = []
    for members in by_title.values():
        chosen = [tunes[k] for k in members]
        if not _is_voice_group(chosen):
            continue
        voices = tuple(
            Voice(t.number, t.name, positions.get(slots[k]))
            for k, t in zip(members, chosen, strict=True)
        )
        groups.append(VoiceGroup(chosen[0].title, voices))
    return groups  # in the order of their first tunes


def _is_voice_group(tunes: Sequence[_Tune]) -> bool:
    if len(tunes) < 2:
        return False
    if any(t.named_by_title for t in tunes):
        return True
    return len({t.name for t in tunes if t.name}) >= 2


def _scan_tune(number: str, text: str) -> _Tune:
    """The first title, second title and `V:` voices of one tune (its own lines, not the book's
    header that `split_abc_tunes` prepends)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if X_LINE.match(line)), 0)
    titles: list[str] = []
    voices: dict[str, str] = {}  # voice id -> its name (the id when it has none)
    for line in lines[start + 1 :]:
        if line.startswith("%"):
            continue
        field = _FIELD.match(line)
        if field is not None:
            tag, value = field.group(1), field.group(2).split("%", 1)[0].strip()
            if tag == "T":
                titles.append(value)
            elif tag == "V":
                _add_voice(voices, value)
            continue
        for inline in _INLINE_VOICE.finditer(line):
            _add_voice(voices, inline.group(1))
    second = titles[1] if len(titles) > 1 else ""
    if second and VOICE_WORD.match(second):
        return _Tune(number, titles[0], second, True)
    only = next(iter(voices.values())) if len(voices) == 1 else ""
    return _Tune(number, titles[0] if titles else "", only, False)


def _add_voice(voices: dict[str, str], value: str) -> None:
    words = value.split()
    if not words or words[0] in voices:
        return
    named = _VOICE_NAME.search(value)
    voices[words[0]] = (named.group(1) or named.group(2) or words[0]) if named else words[0]


def _title_key(title: str) -> str:
    return " ".join(title.split()).casefold().rstrip(" .,;:")


def _slots(numbers: Iterable[str | None]) -> list[tuple[str, int]]:
    """(number key, order among the numbers with that key) of each number, in order."""
    seen: Counter[str] = Counter()
    out = []
    for number in numbers:
        key = (number or "").lstrip("0") or "0"
        out.append((key, seen[key]))
        seen[key] += 1
    return out
