"""Dedupe precision and recall on labelled duplicate pairs built from the real data.

The labelled pairs (see `labelled_pairs`) are the twins the issue names: music21's Bach and
Beethoven op. 18 no. 1 kern/MusicXML twins, the Schumann song twin (Dichterliebe no. 2 twice),
O'Neill's tunes that appear in two overlapping files, ASAP's `*_no_repeat` files and their full
versions, and the ASAP and Sapp-kern editions of the same Beethoven and Mozart sonata movements
(and Sapp's Prestissimo of sonata 21, a file of its own and the end of the rondo's file).
Every other pair of the evaluated items counts as a non-duplicate. The whole evaluation is slow:
it ingests about 300 real files (cached in .cache/gnm after the first run); the quick test runs
the same evaluation on music21's eight twin files only.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from pipeline.corpora import CorpusDecl, parse_declaration
from pipeline.stages import dedupe, ingest
from pipeline.stages.dedupe import DedupeConfig
from pipeline.stages.ingest import IngestConfig
from tests.helpers import REPO

EVAL_CORPORA = {
    "m21-bach": {
        "kind": "music21",
        "include": [f"bach/bwv{n}.{e}" for n in (277, 281, 366) for e in ("krn", "mxl")],
    },
    "m21-beethoven": {"kind": "music21", "include": ["beethoven/opus18no1/*"]},
    "m21-classical": {
        "kind": "music21",
        "include": ["schumann_robert/opus48no2.mxl", "schumann_robert/dichterliebe_no2.xml"],
    },
    "m21-folk": {"kind": "music21", "include": ["oneills1850/*.abc"]},
    "asap": {
        "kind": "directory",
        "path": "asap",
        "include": [
            "Beethoven/Piano_Sonatas/*.mxl",
            "Mozart/Piano_Sonatas/*.mxl",
            "Haydn/Keyboard_Sonatas/*-1*.mxl",
            "Chopin/Sonata_2/*.mxl",
            "Schubert/Impromptu_op.90_D.899/4*.mxl",
            "Schubert/Piano_Sonatas/894-2*.mxl",
        ],
    },
    "sapp-beethoven-sonatas": {
        "kind": "directory",
        "path": "sapp-beethoven-sonatas",
        "include": ["*.krn"],
    },
    "sapp-mozart-sonatas": {
        "kind": "directory",
        "path": "sapp-mozart-sonatas",
        "include": ["*.krn"],
    },
}
PRIORITY = {"sapp-beethoven-sonatas": 80, "sapp-mozart-sonatas": 80, "asap": 70}
# The Bach chorale and Schumann song twins: four labelled pairs, read in about a second.
MUSIC21_TWINS = {name: EVAL_CORPORA[name] for name in ("m21-bach", "m21-classical")}


def declarations(corpora: dict[str, dict[str, object]]) -> list[CorpusDecl]:
    return [
        parse_declaration(
            {"name": name, "description": "dedupe evaluation", "source": source, "genre": "classical",
             "licence": "see shared/data", "redistributable": False, "priority": PRIORITY.get(name, 50)},
            f"<eval:{name}>",
        )
        for name, source in corpora.items()
    ]  # fmt: skip


def labelled_pairs(ids: set[str]) -> set[frozenset[str]]:
    """The duplicate pairs we know of among `ids`."""
    pairs: set[frozenset[str]] = set()

    def add(a: str, b: str) -> None:
        if a in ids and b in ids:
            pairs.add(frozenset((a, b)))

    for n in (277, 281, 366):
        add(f"m21-bach/bach/bwv{n}.krn", f"m21-bach/bach/bwv{n}.mxl")
    for k in range(1, 5):
        add(
            f"m21-beethoven/beethoven/opus18no1/movement{k}.krn",
            f"m21-beethoven/beethoven/opus18no1/movement{k}.mxl",
        )
    add(
        "m21-classical/schumann_robert/opus48no2.mxl",
        "m21-classical/schumann_robert/dichterliebe_no2.xml",
    )
    # O'Neill's files are named by the tune numbers they cover ("0550-0625.abc"); where two
    # files' ranges overlap, the tune of one number in both is the same tune. (Outside its range a
    # file reuses X numbers for other tunes, so those are not paired.)
    by_number: dict[int, list[str]] = {}
    for i in ids:
        m = re.match(r"m21-folk/oneills1850/(\d+)-(\d+)[^#]*#X:(\d+)$", i)
        if m and int(m.group(1)) <= int(m.group(3)) <= int(m.group(2)):
            by_number.setdefault(int(m.group(3)), []).append(i)
    for same in by_number.values():
        for a, b in itertools.combinations(sorted(same), 2):
            add(a, b)
    for i in ids:
        m = re.match(r"(asap/.+?)_no(_2)?_repeat\.mxl$", i)
        if m:
            add(i, f"{m.group(1)}.mxl")
    # Sapp's sonata21-3.krn holds the whole rondo, its closing Prestissimo included (the
    # `!!!OMD: Prestissimo` inside it), which sonata21-4.krn holds again alone.
    add("sapp-beethoven-sonatas/sonata21-3.krn", "sapp-beethoven-sonatas/sonata21-4.krn")
    for composer, sapp in (
        ("Beethoven", "sapp-beethoven-sonatas"),
        ("Mozart", "sapp-mozart-sonatas"),
    ):
        for i in ids:
            m = re.match(
                rf"asap/{composer}/Piano_Sonatas/(\d+)-([\d_]+)(?:_no_repeat|_no_trio)?\.mxl$", i
            )
            if m:
                for movement in m.group(2).split("_"):
                    add(i, f"{sapp}/sonata{int(m.group(1)):02d}-{movement}.krn")
    return pairs


def closure(pairs: set[frozenset[str]]) -> set[frozenset[str]]:
    """All pairs implied by transitivity (a twin of a twin is a twin)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in (tuple(p) for p in pairs):
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return {frozenset(p) for g in groups.values() for p in itertools.combinations(sorted(g), 2)}


class Evaluation(NamedTuple):
    """Dedupe's groups against the known duplicate pairs of the evaluated items."""

    ids: set[str]
    labelled: set[frozenset[str]]  # the pairs `labelled_pairs` knows
    same_notes: set[frozenset[str]]  # pairs dedupe matched by bytes or notes
    truth: set[frozenset[str]]  # both, closed under transitivity
    predicted: set[frozenset[str]]  # every pair of items dedupe put in one group


def evaluate(
    corpora: dict[str, dict[str, object]], data_root: Path, cache: Path, scheduler: str | None
) -> Evaluation:
    """Ingest the declared `corpora` (through `cache`), dedupe them and compare with the labels."""
    decls = declarations(corpora)
    files = [f for d in decls for f in d.files(data_root)]
    result = ingest.run(
        files, {d.name: d for d in decls}, IngestConfig(), cache, scheduler=scheduler, workers=2
    )
    scored = list(result.scores())
    pieces = [row for _, row in scored]
    _, groups, matches = dedupe.run(pieces, [s for s, _ in scored], DedupeConfig())
    ids = {row["id"] for row in pieces}
    labelled = labelled_pairs(ids)
    # Pairs with the same notes after transposition and tempo scaling are duplicates by
    # definition, whatever their titles say (O'Neill prints some tunes twice under two names).
    same_notes = {frozenset((m.a, m.b)) for m in matches if m.via in ("exact", "identity")}
    members: dict[str, list[str]] = {}
    for g in groups:
        members.setdefault(g["group"], []).append(g["id"])
    predicted = {
        frozenset(p) for m in members.values() for p in itertools.combinations(sorted(m), 2)
    }
    return Evaluation(ids, labelled, same_notes, closure(labelled | same_notes), predicted)


def test_dedupe_groups_exactly_the_music21_twins(tmp_path: Path) -> None:
    found = evaluate(MUSIC21_TWINS, tmp_path, tmp_path / "cache", scheduler="inline")
    assert len(found.ids) == 8 and len(found.labelled) == 4
    assert found.predicted == found.truth == found.labelled


@pytest.mark.slow
def test_dedupe_precision_and_recall_on_labelled_real_pairs(data_root: Path) -> None:
    found = evaluate(EVAL_CORPORA, data_root, REPO / ".cache" / "gnm", scheduler=None)
    hits = found.predicted & found.truth
    precision = len(hits) / len(found.predicted)
    recall = len(hits) / len(found.truth)
    missed = sorted(tuple(sorted(p)) for p in found.truth - found.predicted)
    extra = sorted(tuple(sorted(p)) for p in found.predicted - found.truth)
    print(f"\ndedupe on {len(found.ids)} items: {len(found.truth)} true pairs "
          f"({len(found.labelled)} labelled, {len(found.same_notes - found.labelled)} more with "
          f"identical notes), {len(found.predicted)} predicted, "
          f"precision {precision:.3f}, recall {recall:.3f}")  # fmt: skip
    print("missed:", missed[:20])
    print("extra:", extra[:20])
    assert len(found.truth) >= 150
    assert precision >= 0.95, extra[:10]
    assert recall >= 0.90, missed[:10]
