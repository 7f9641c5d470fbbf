"""The README front page and the mkdocs reference in docs/: the two commands first, CI running the
README's test command, links that resolve, every page in the navigation."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.helpers import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
COMMANDS = (
    "bash scripts/setup.sh && .venv/bin/gnm quickstart",
    "bash scripts/setup.sh && .venv/bin/python -m pytest -n 2",
)
# [text](target): a Markdown inline link; images and reference links are not used here.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_readme_opens_with_the_two_commands() -> None:
    assert README.read_text().splitlines()[:4] == ["```bash", *COMMANDS, "```"]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == COMMANDS[1]


def test_the_readmes_relative_links_name_files_that_exist() -> None:
    targets = [t for t in LINK.findall(README.read_text()) if "://" not in t]
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (REPO / t.split("#")[0]).is_file()]
    assert missing == []


def nav_pages(entries: list[object]) -> list[str]:
    """The page files a mkdocs `nav` lists, sections flattened."""
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_mkdocs_lists_every_page_of_docs_once_and_builds_outside_it() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs" and config["strict"] is True
    pages = nav_pages(config["nav"])
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md"))
    assert len(set(pages)) == len(pages)
    site = Path(config["site_dir"])
    assert not (REPO / site).resolve().is_relative_to(DOCS.resolve())
    assert f"/{site}/" in (REPO / ".gitignore").read_text().splitlines()
