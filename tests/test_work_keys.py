from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline.corpora import load_declaration, load_declarations
from pipeline.errors import CorpusError
from pipeline.stages import ingest
from pipeline.stages.ingest import IngestConfig
from pipeline.work_keys import WorkRule, work_key
from tests.helpers import REPO, m21_path

OPUS = WorkRule(
    "^prelude(?P<opus>[0-9]+)-(?P<number>[0-9]+)[.]krn$", "{composer}/op{opus}/{number}"
)
TITLE = WorkRule(
    "Op[.] (?P<opus>[0-9]+), No[.] (?P<number>[0-9]+)", "{composer}/op{opus}/{number}", "title"
)

DECLARATION = """\
name: set
description: a test corpus
source: {{kind: directory, path: set, include: ["*"]}}
genre: classical
composer: Chopin
licence: test
redistributable: true
priority: 1
work_pattern:
{rules}
"""


def test_a_rule_names_the_work_from_the_path_or_the_title() -> None:
    assert OPUS.key_for("prelude28-07.krn", "", "Chopin") == "Chopin/op28/7"  # zeros dropped
    assert OPUS.key_for("nocturne09-1.krn", "", "Chopin") is None
    assert OPUS.key_for("prelude28-07.krn", "", None) is None  # {composer} without one
    title = "Mazurka in C-sharp Minor, Op. 6, No. 2"
    assert TITLE.key_for("mazurka06-2.krn", title, "Chopin") == "Chopin/op6/2"
    assert work_key((OPUS, TITLE), "mazurka06-2.krn", title, "Chopin") == "Chopin/op6/2"
    assert work_key((OPUS, TITLE), "prelude28-1.krn", title, "Chopin") == "Chopin/op28/1"  # first
    assert work_key((), "prelude28-1.krn", title, "Chopin") is None
    composer_group = WorkRule("^(?P<composer>[^/]+)/(?P<n>[0-9]+)", "{composer}:{n}")
    assert composer_group.key_for("Liszt/007.mxl", "", "Chopin") == "Liszt:7"  # the group wins


def test_the_shipped_declarations_give_one_work_one_key_across_corpora() -> None:
    decls = {d.name: d for d in load_declarations(REPO / "corpora")}

    def key(corpus: str, rel_path: str) -> str | None:
        return decls[corpus].work_for(rel_path, "")

    sonata = key("sapp-beethoven-sonatas", "sonata17-1.krn")
    assert sonata == "Beethoven/sonata17/1"
    assert key("asap", "Beethoven/Piano_Sonatas/17-1.mxl") == sonata
    assert key("asap", "Beethoven/Piano_Sonatas/17-1_no_repeat.mxl") == sonata
    assert key("asap", "Mozart/Piano_Sonatas/11-3.mxl") == key(
        "sapp-mozart-sonatas", "sonata11-3.krn"
    )
    assert key("sapp-mozart-sonatas", "sonata06-3a.krn") != key(
        "sapp-mozart-sonatas", "sonata06-3b.krn"
    )  # two variations of one theme are two pieces
    assert key("sapp-chopin-preludes", "prelude28-12.krn") == "Chopin/op28/12"
    assert key("asap", "Chopin/Etudes_op_10/1.mxl") == "Chopin/op10/1"
    assert key("asap", "Chopin/Sonata_3/3rd.mxl") == "Chopin/op58/3"
    assert key("m21-chopin", "chopin/mazurka06-2.krn") == "Chopin/op6/2"
    assert key("asap", "Schumann/Toccata_repeat.mxl") == key("asap", "Schumann/Toccata.mxl")
    assert key("m21-beethoven", "beethoven/opus18no1/movement2.krn") == key(
        "m21-beethoven", "beethoven/opus18no1/movement2.mxl"
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('  pattern: "^(?P<n>[0-9]+)"\n  key: "{composer}/{number}"', "{number} is not a named group"),
        ('  pattern: "^(?P<n>[0-9]+)"\n  key: "op{n}}"', "braces only around a group name"),
        ('  pattern: "^(?P<n>\\\\d+)"\n  key: "{n}"', "\\d would match ASCII only"),
        ('  pattern: "^(?P<n>[0-9]+)(?=/)"\n  key: "{n}"', "invalid perl operator"),
        ('  pattern: "^(?P<n>[0-9]+)"', "field work_pattern"),
        ('  - pattern: "^a"\n    key: "a"\n  - pattern: "^(?P<n>[0-9]+)"\n    key: "{m}"', "work_pattern[1].key"),
        ('  pattern: "^a"\n  key: "a"\n  field: composer', "field work_pattern"),
    ],
)  # fmt: skip
def test_unusable_work_patterns_are_refused_naming_the_field(
    tmp_path: Path, rules: str, message: str
) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(DECLARATION.format(rules=rules))
    with pytest.raises(CorpusError, match=re.escape(message)):
        load_declaration(path)


def test_ingest_rows_carry_the_declared_work(tmp_path: Path) -> None:
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    shutil.copy(m21_path("chopin/mazurka06-2.krn"), data / "mazurka06-2.krn")
    shutil.copy(m21_path("chopin/mazurka06-2.krn"), data / "first-edition.krn")
    shutil.copy(m21_path("bach/bwv66.6.mxl"), data / "bwv66.6.mxl")
    path = tmp_path / "set.yaml"
    path.write_text(
        DECLARATION.format(
            rules='  field: title\n  pattern: "Op[.] (?P<opus>[0-9]+), No[.] (?P<number>[0-9]+)"\n'
            '  key: "{composer}/op{opus}/{number}"'
        )
    )
    decl = load_declaration(path)
    result = ingest.run(
        decl.files(tmp_path / "data"), {"set": decl}, IngestConfig(), None, scheduler="inline"
    )
    with result:
        works = {row["id"]: row["work"] for _, row in result.scores()}
    assert works == {
        "set/mazurka06-2.krn": "Chopin/op6/2",
        "set/first-edition.krn": "Chopin/op6/2",  # named by its title, whatever the file name
        "set/bwv66.6.mxl": None,
    }
