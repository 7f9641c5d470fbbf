"""Declared work identity: a declaration's `work_pattern` names the work each file is.

Dedupe groups files by their music; a work can also come as files whose music differs a lot (an
early edition, a part file, a movement without its repeats), and two corpora may hold the same
work under different names. A work rule reads the work from the item's relative path (or its
title): an RE2 `pattern` with named groups, and a `key` template filled from them, e.g.

    pattern: "^prelude(?P<opus>[0-9]+)-(?P<number>[0-9]+)[.]krn$"
    key: "{composer}/op{opus}/{number}"

gives `prelude28-07.krn` the key `Chopin/op28/7`. Placeholders are the pattern's named groups
and `{composer}` (the item's composer, unless the pattern has a group of that name); captures
made only of digits lose their leading zeros, so `07` and `7` name one work in two corpora.
Rules are tried in order, the first that matches gives the key; an item no rule matches (or
whose key needs a composer it lacks) has none. Files with one key land in one dedupe group, so
one of them reaches the shards and a work never straddles splits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import CorpusError
from pipeline.linear_regex import check_pattern, linear_regex

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
FIELDS = ("path", "title")


@dataclass(frozen=True)
class WorkRule:
    """One rule of a `work_pattern`: where to look, the pattern, and the key template."""

    pattern: str
    key: str
    field: str = "path"  # path: the item's relative path; title: the title its file gives

    def key_for(self, rel_path: str, title: str, composer: str | None) -> str | None:
        """The work key this rule gives an item, or None when the pattern does not match."""
        match = linear_regex(self.pattern).search(rel_path if self.field == "path" else title)
        if match is None:
            return None
        values = {name: _normalise(text or "") for name, text in match.groupdict().items()}
        if "composer" not in values:
            if composer is None:
                return None
            values["composer"] = composer
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], self.key)


def _normalise(text: str) -> str:
    return str(int(text)) if text.isascii() and text.isdigit() else text


def work_key(
    rules: Sequence[WorkRule], rel_path: str, title: str, composer: str | None
) -> str | None:
    """The key of the first rule that matches the item (None when none does)."""
    for rule in rules:
        key = rule.key_for(rel_path, title, composer)
        if key is not None:
            return key
    return None


def parse_work_rules(data: Any, where: str) -> tuple[WorkRule, ...]:
    """The rules of a schema-valid `work_pattern` (one rule or a list); CorpusError if unusable."""
    rules = []
    for i, body in enumerate(data if isinstance(data, list) else [data]):
        at = f"{where}[{i}]" if isinstance(data, list) else where
        rules.append(_rule(body, at))
    return tuple(rules)


def _rule(body: Mapping[str, Any], where: str) -> WorkRule:
    compiled = check_pattern(body["pattern"], f"{where}.pattern")
    groups = set(compiled.groupindex) | {"composer"}
    key = body["key"]
    unknown = sorted(set(PLACEHOLDER.findall(key)) - groups)
    if unknown:
        raise CorpusError(
            f"{where}.key: {', '.join('{' + u + '}' for u in unknown)} is not a named group of "
            f"the pattern (placeholders: {', '.join(sorted(groups))})"
        )
    if "{" in PLACEHOLDER.sub("", key) or "}" in PLACEHOLDER.sub("", key):
        raise CorpusError(f"{where}.key: braces only around a group name, as in {{number}}")
    return WorkRule(body["pattern"], key, body.get("field", "path"))
