"""Reading the small YAML files a user writes (corpus declarations, params.yaml) with bounds.

`yaml.safe_load` trusts its input in three ways a hostile or broken file can abuse: an alias
repeats a node without copying it, so nine lines of aliases stand for a billion strings, which
jsonschema's error message (the `repr` of the value) or any walk then expands (1.3 GB and still
running after 30 s, measured); PyYAML composes nested nodes recursively, so a deep nesting raises
RecursionError; and the whole file is read first, whatever its size. Neither declarations nor
params.yaml need aliases, so `load_config` refuses them outright, refuses nesting deeper than
`MAX_DEPTH` and files over `MAX_BYTES`. Every refusal is a `yaml.YAMLError`, which the callers
already turn into their own error naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import Node

MAX_BYTES = 1 << 20  # a declaration is about 1 KB and params.yaml about 5 KB
MAX_DEPTH = 32  # nested mappings and sequences; the shipped files nest 3 deep


class ConfigTooLarge(yaml.YAMLError):
    """A configuration file over `MAX_BYTES`."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader without aliases and with a nesting limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, "aliases (*name) are not allowed in this file", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            node: Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def parse_config(text: str, name: str = "<string>") -> Any:
    """The YAML document in `text`, refusing aliases and deep nesting (yaml.YAMLError naming
    `name` and the line)."""
    if len(text) > MAX_BYTES:
        raise ConfigTooLarge(f"{len(text):,} characters, over the {MAX_BYTES:,} of a config file")
    loader = _BoundedLoader(text)
    loader.name = name  # what the error marks call the document
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config(path: str | Path) -> Any:
    """Read and parse one YAML configuration file (OSError, yaml.YAMLError; see the module doc)."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)  # never more, whatever the file's size
    if len(data) > MAX_BYTES:
        raise ConfigTooLarge(f"over {MAX_BYTES:,} bytes, too large for a config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise yaml.YAMLError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_config(text, str(path))
