"""The fast path of `read_items`: the fast reader, and the reference reader where it cannot.

A fast reader raises `Unsupported(<what>)` for a construct it does not handle (the whole file),
or returns `ItemFailure(item, "unsupported:<what>")` for one piece of a collection. An exception
that is neither `Unsupported` nor a `GnmError` is a bug in the fast reader, not a broken file.
In each case the reference reader reads what the fast one could not, and every score it gives
counts `reader_fallback:<what>` (`reader_fallback:error:<ExceptionType>` for a bug): nothing is
silent. This module is outside the reference readers' cache key (see `ingest_cache.reader_version`),
so changing it never throws away cached reference readings.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.errors import GnmError, Unsupported
from pipeline.ledger import FALLBACK_PREFIX
from pipeline.readers.common import ItemFailure
from pipeline.score import Score

Items = list[Score | ItemFailure]
Reader = Callable[..., Items]


def read_fast(path: Path, fast: Reader, reference: Reader, *, expand_repeats: bool) -> Items:
    """The fast reading of `path`, with what it cannot read read by `reference` (counted)."""
    try:
        items = list(fast(path, expand_repeats=expand_repeats))
    except Unsupported as exc:
        what = exc.what
    except GnmError:
        raise  # the file itself is refused, with its reason
    except Exception as exc:  # a bug of the fast reader: the file may well be fine
        what = f"error:{type(exc).__name__}"
    else:
        if not any(_unsupported(i) for i in items):
            return items
        return replace_unsupported(path, items, reference, expand_repeats=expand_repeats)
    return counted(list(reference(path, expand_repeats=expand_repeats)), what)


def _unsupported(piece: Score | ItemFailure) -> bool:
    return isinstance(piece, ItemFailure) and piece.reason.startswith("unsupported:")


def replace_unsupported(
    path: Path, items: Items, reference: Reader, *, expand_repeats: bool
) -> Items:
    """`items` with the pieces the fast reader left `unsupported:` read by the reference reader.

    Pieces pair by item number and, where a collection reuses a number, by their order among
    the pieces of that number. When the reference reader fails too, the failure stays, its
    detail naming both.
    """
    wanted = {i.item for i in items if isinstance(i, ItemFailure) and _unsupported(i)}
    try:
        if "only" in inspect.signature(reference).parameters:
            again = list(reference(path, expand_repeats=expand_repeats, only=wanted))
        else:
            again = list(reference(path, expand_repeats=expand_repeats))
        error = ""
    except GnmError as exc:
        again, error = [], str(exc)
    again_slots = item_slots(again)
    out: Items = []
    for slot, piece in item_slots(items).items():
        if not (isinstance(piece, ItemFailure) and _unsupported(piece)):
            out.append(piece)
        elif slot in again_slots:
            out.extend(counted([again_slots[slot]], piece.reason.removeprefix("unsupported:")))
        else:  # the reference reader cannot read it either: keep the failure, say both
            detail = piece.detail + (f"; reference reader: {error}" if error else "")
            out.append(ItemFailure(piece.item, piece.reason, detail))
    return out


Slot = tuple[str | None, int]  # (collection item, its order among the pieces of that number)


def item_slots(pieces: Sequence[Score | ItemFailure]) -> dict[Slot, Score | ItemFailure]:
    """Pieces by (item, n), in their order: a collection that reuses an `X:` number keeps all."""
    out: dict[Slot, Score | ItemFailure] = {}
    seen: Counter[str | None] = Counter()
    for piece in pieces:
        key = item_key(piece)
        out[(key, seen[key])] = piece
        seen[key] += 1
    return out


def item_key(piece: Score | ItemFailure) -> str | None:
    """The collection item (`X:` number) of a piece, None for a single-piece file."""
    return piece.item if isinstance(piece, ItemFailure) else piece.meta.collection_item


def counted(items: Items, what: str) -> Items:
    """Scores counting `reader_fallback:<what>` once each."""
    return [
        s.with_counts({FALLBACK_PREFIX + what: 1}) if isinstance(s, Score) else s for s in items
    ]
