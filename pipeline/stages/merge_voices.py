"""Ingest's voice policy: the voices of one piece become one multi-part score, or stay out.

The readers give one score per tune; `pipeline.readers.voices` finds the tunes of a book that
are the voices of one piece. With the corpus option `group_voices: true` each group is merged:
the parts of its tunes, in file order, named by their voices, over the bars they share. The
merged score takes the first tune's item (so its id is `<file id>#X:<first X>`); every other
tune of the group is a `MergedVoice` that the ledger records as `merged_into:<that id>`. A group
that cannot be merged faithfully is quarantined, every tune of it:
`voices_disagree` (bar structures differ, a voice name repeats, more than one voice is unnamed)
or `voices_incomplete` (a voice could not be read). Without the option every tune of a group
is quarantined `voice_of_multi_voice_piece`: a voice alone is never accepted as a piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import add

from pipeline.errors import ScoreParseError, ScoreValidationError
from pipeline.readers.common import ItemFailure
from pipeline.readers.voices import Voice, VoiceGroup
from pipeline.score import Bar, Note, Part, Score

VOICE_OF_PIECE = "voice_of_multi_voice_piece"
VOICES_DISAGREE = "voices_disagree"
VOICES_INCOMPLETE = "voices_incomplete"
# Report counts that describe the source as a whole, not one voice: the merged score keeps the
# largest (a book's voices are counted over the same measures); every other count is summed.
_LARGEST_COUNTS = ("source_measures",)


@dataclass(frozen=True)
class MergedVoice:
    """A tune merged as voice `name` into the score at position `into` of the file's items."""

    item: str | None
    into: int
    name: str


Resolved = Score | ItemFailure | MergedVoice


def resolve_voices(
    items: Sequence[Score | ItemFailure], groups: Sequence[VoiceGroup], *, merge: bool
) -> list[Resolved]:
    """`items` with every voice group merged (`merge`) or quarantined, positions kept.

    The merged score takes the place of the group's first tune; the other tunes become
    `MergedVoice` markers pointing at it; a tune that failed on its own keeps its failure.
    """
    out: list[Resolved] = list(items)
    for group in groups:
        members = [v for v in group.voices if v.index is not None]
        if not merge:
            detail = (
                f"one of the {_listing(group)} of '{group.title}' "
                "(declare group_voices: true to merge them into one piece)"
            )
            _quarantine(out, members, VOICE_OF_PIECE, detail)
            continue
        unread = [v for v in group.voices if v.index is None or not isinstance(out[v.index], Score)]
        if unread:
            what = ", ".join(_label(v) for v in unread)
            detail = f"{what} of '{group.title}' could not be read ({_listing(group)})"
            _quarantine(out, members, VOICES_INCOMPLETE, detail)
            continue
        scores = [s for s in (out[_index(v)] for v in members) if isinstance(s, Score)]
        names = voice_names(group.voices)
        try:
            merged = merge_voices(scores, names, members)
        except ScoreParseError as exc:
            _quarantine(out, members, exc.reason, f"'{group.title}': {exc}")
            continue
        except ScoreValidationError as exc:  # not expected: each voice was valid on its own
            _quarantine(out, members, "invalid_score", f"'{group.title}' merged: {exc}")
            continue
        first = _index(members[0])
        out[first] = merged
        for voice, name in zip(members[1:], names[1:], strict=True):
            out[_index(voice)] = MergedVoice(_item(items[_index(voice)]), first, name)
    return out


def voice_names(voices: Sequence[Voice]) -> list[str]:
    """The part names of a group's voices: their own, `Voice <n>` (position from 1) when unnamed."""
    return [v.name or f"Voice {k}" for k, v in enumerate(voices, 1)]


def merge_voices(scores: Sequence[Score], names: Sequence[str], voices: Sequence[Voice]) -> Score:
    """One score holding the parts of `scores` (one per voice, in order) named by `names`.

    ScoreParseError `voices_disagree` when their bars differ in number, length, meter or pickup,
    when a voice name repeats or when more than one voice is unnamed: such voices cannot be
    laid over one another faithfully. Title, composer, item, key and tempi are the first
    voice's; reports are summed (`source_measures`: the largest), plus `voices_merged`.
    """
    _check_names(voices)
    first = scores[0]
    for voice, score in zip(voices[1:], scores[1:], strict=True):
        _check_bars(voices[0], first, voice, score)
    parts: list[Part] = []
    notes: list[Note] = []
    report: dict[str, float] = {"voices_merged": len(scores)}
    for score, name in zip(scores, names, strict=True):
        offset = len(parts)
        for part in score.parts:
            label = name if len(score.parts) == 1 else f"{name}: {part.name or part.index + 1}"
            parts.append(Part(offset + part.index, label, part.program, part.is_drum))
        notes.extend(n._replace(part=n.part + offset) for n in score.notes)
        for key, value in score.report.items():
            combine = max if key in _LARGEST_COUNTS else add
            report[key] = combine(report.get(key, 0), value)
        if score.tempos != first.tempos:
            report["voice_tempi_ignored"] = report.get("voice_tempi_ignored", 0) + 1
    merged = first.replace(notes=notes, parts=tuple(parts), report=report)
    merged.validate()
    return merged


def _check_names(voices: Sequence[Voice]) -> None:
    unnamed = [v for v in voices if not v.name]
    if len(unnamed) > 1:
        raise ScoreParseError(
            f"{len(unnamed)} tunes name no voice ({', '.join(_label(v) for v in unnamed)})",
            VOICES_DISAGREE,
        )
    seen: dict[str, Voice] = {}
    for voice in voices:
        key = voice.name.casefold()
        if key and key in seen:
            raise ScoreParseError(
                f"voice {voice.name} is X:{seen[key].number} and X:{voice.number}", VOICES_DISAGREE
            )
        seen[key] = voice


def _check_bars(ref_voice: Voice, ref: Score, voice: Voice, score: Score) -> None:
    """ScoreParseError unless `score`'s bars are `ref`'s: same count, lengths, meters, pickup."""
    if len(score.bars) != len(ref.bars):
        raise ScoreParseError(
            f"{_label(voice)} has {len(score.bars)} bars, {_label(ref_voice)} {len(ref.bars)}",
            VOICES_DISAGREE,
        )
    for k, (mine, theirs) in enumerate(zip(score.bars, ref.bars, strict=True)):
        if (mine.length, mine.meter, mine.pickup) != (theirs.length, theirs.meter, theirs.pickup):
            raise ScoreParseError(
                f"bar {k + 1} of {_label(voice)} is {_bar(mine)}, of {_label(ref_voice)} "
                f"{_bar(theirs)}",
                VOICES_DISAGREE,
            )


def _bar(bar: Bar) -> str:
    return f"{bar.meter} of {bar.length} quarters" + (" (pickup)" if bar.pickup else "")


def _label(voice: Voice) -> str:
    return f"X:{voice.number}" + (f" ({voice.name})" if voice.name else "")


def _listing(group: VoiceGroup) -> str:
    return f"{len(group.voices)} voices ({', '.join(_label(v) for v in group.voices)})"


def _index(voice: Voice) -> int:
    assert voice.index is not None  # only voices the reader gave an item for are members
    return voice.index


def _item(piece: Score | ItemFailure) -> str | None:
    return piece.item if isinstance(piece, ItemFailure) else piece.meta.collection_item


def _quarantine(out: list[Resolved], members: Sequence[Voice], reason: str, detail: str) -> None:
    """Every member still read becomes a failure `reason`; one that failed keeps its own."""
    for voice in members:
        piece = out[_index(voice)]
        if isinstance(piece, Score):
            item = _item(piece) or voice.number
            out[_index(voice)] = ItemFailure(item, reason, f"{_label(voice)}: {detail}")
