"""The JSON schemas name the same constants as the code (a schema cannot import them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.corpora import GENRES
from pipeline.readers import READER_KINDS, SUPPORTED_EXTENSIONS
from pipeline.stages import shard
from pipeline.tokenizer import vocab

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _schema(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text())


def test_corpus_schema_lists_the_readers_formats_and_kinds() -> None:
    properties = _schema("corpus.schema.json")["properties"]
    formats = properties["formats"]["items"]["enum"]
    assert sorted(f".{f}" for f in formats) == sorted(SUPPORTED_EXTENSIONS)
    assert tuple(properties["reader"]["enum"]) == READER_KINDS
    assert tuple(properties["genre"]["enum"]) == GENRES  # read from the schema: one list


def test_shard_index_schema_names_the_format_and_splits() -> None:
    schema = _schema("shard_index.schema.json")
    assert schema["properties"]["format"]["const"] == shard.FORMAT
    splits = [
        node["enum"]
        for node in _walk(schema)
        if isinstance(node, dict) and set(node) == {"enum"} and "train" in node["enum"]
    ]
    assert splits == [list(shard.SPLIT_ORDER)]


def test_vocab_schema_names_the_format_version_and_no_composer() -> None:
    properties = _schema("vocab.schema.json")["properties"]
    assert properties["format"]["const"] == vocab.FORMAT
    assert properties["version"]["const"] == vocab.FORMAT_VERSION
    composers = properties["config"]["properties"]["composers"]["items"]
    assert composers["not"]["const"] == vocab.NO_COMPOSER


def _walk(node: Any) -> list[Any]:
    """Every mapping and list inside a parsed JSON document, `node` first."""
    out = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        out.extend(_walk(child))
    return out
