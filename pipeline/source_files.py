"""A corpus's input files on disk: every path its globs match, readable or not, with a valid id.

`scan` walks a declared root and lists every path that an include glob matches. Nothing that
matches vanishes: what cannot be read as a file is listed with the quarantine reason that ingest
records for it instead of opening it:

- `not_a_regular_file`: a broken symlink, a FIFO, a socket or a device (never opened: reading a
  FIFO would block the build);
- `outside_root`: a symlink (to a file or a folder) whose target lies outside the root. A
  declaration grants its root and nothing else, so the target is never read, but the link is one
  bad item, not a bad declaration: the rest of the corpus builds;
- `unreadable`: a folder that cannot be listed, as one entry under the folder's path (its files
  cannot be named), or a file that cannot be opened (found by ingest);
- `bad_file_name`: a path longer than the system allows (`ENAMETOOLONG`), found when its folder is
  listed or when ingest opens it.

A link to a folder inside the root is not followed: its files are listed under their own path.

Ids are valid UTF-8 whatever bytes the file system holds: `escape_name` writes each byte of a name
that is not UTF-8 as `\\xNN` (two lowercase hex digits) and a backslash as `\\\\`, so that the
escape can be undone and two different names never share an id.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

from pipeline.linear_regex import linear_regex

NOT_A_REGULAR_FILE = "not_a_regular_file"
OUTSIDE_ROOT = "outside_root"
UNREADABLE = "unreadable"
BAD_FILE_NAME = "bad_file_name"
# Reasons that describe the file system, not the file's content: never cached, since the same
# bytes may be readable next time.
FILE_SYSTEM_REASONS = (NOT_A_REGULAR_FILE, OUTSIDE_ROOT, UNREADABLE, BAD_FILE_NAME)


@dataclass(frozen=True)
class SourceFile:
    """One input of a corpus: its path relative to the corpus root (escaped) and on disk.

    `reason` is set when the entry cannot be read as a file (see the module docstring): ingest
    quarantines it with `detail` and never opens it.
    """

    corpus: str
    rel_path: str
    path: Path
    reason: str | None = None
    detail: str = ""

    @property
    def id(self) -> str:
        """The item id of the file (`<corpus>/<relative path>`); collection items add `#X:<n>`."""
        return f"{self.corpus}/{self.rel_path}"


@dataclass(frozen=True)
class Listed:
    """What `scan` found: a path relative to the root (as the file system spells it), whether it
    is a folder (one that cannot be listed, or a link out), and why it cannot be read (None for a
    regular file)."""

    rel: str
    path: Path
    reason: str | None = None
    detail: str = ""
    folder: bool = False


def escape_name(name: str) -> str:
    """`name` (as `os.fsdecode` gives it) as valid UTF-8: undecodable bytes as `\\xNN`, `\\` as `\\\\`."""
    raw = os.fsencode(name).replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


def valid_text(text: str) -> str:
    """Free text (a detail, a title) as valid UTF-8: bytes that were not UTF-8 as `\\xNN`.

    Unlike `escape_name` it leaves backslashes alone: it names, it need not be reversible.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def os_problem(exc: OSError) -> tuple[str, str]:
    """The quarantine reason and detail for an error opening or listing a path."""
    name = valid_text(os.path.basename(os.fsdecode(exc.filename))) if exc.filename else ""
    where = f" ({name})" if name else ""
    if exc.errno == errno.ENAMETOOLONG:
        return BAD_FILE_NAME, f"path longer than the system allows{where}"
    if exc.errno == errno.ELOOP:
        return NOT_A_REGULAR_FILE, f"symlink loop{where}"
    return UNREADABLE, f"{exc.strerror or type(exc).__name__}{where}"


def regular_file_sha256(path: Path) -> str | None:
    """The sha256 hex digest of a regular file's bytes; None when `path` is not a regular file.

    Opened without blocking and checked on the open descriptor, so that a FIFO put in a file's
    place after the listing never hangs the build. OSError when it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan(root: Path, include: Sequence[str], exclude: Sequence[str] = ()) -> Iterator[Listed]:
    """Every path under `root` that an include glob matches and no exclude glob does.

    Include globs match name by name (`*`, `?`, `[...]` within a name, `**` for any number of
    folders); exclude globs are matched against the whole relative path (`*` and `?` within a
    name, `**/` for any number of folders). A folder that may hold matches but cannot be listed is
    listed itself, unless an exclude glob matches `<folder>/`. OSError when `root` itself cannot
    be listed.
    """
    real_root = Path(os.path.realpath(root))
    patterns = [tuple(p.split("/")) for p in include]
    pending = [("", root)]
    while pending:
        rel_dir, folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if not rel_dir:
                raise
            if not _excluded(rel_dir + "/", exclude):
                yield Listed(rel_dir, folder, *os_problem(exc), folder=True)
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            path = folder / entry.name
            parts = tuple(rel.split("/"))
            if _is_dir(entry):
                if not any(_may_hold(parts, p) for p in patterns):
                    continue
                if not entry.is_symlink():
                    pending.append((rel, path))
                elif not _inside(path, real_root) and not _excluded(rel + "/", exclude):
                    detail = "symlink to a folder outside the root"
                    yield Listed(rel, path, OUTSIDE_ROOT, detail, folder=True)
            elif any(_matches(parts, p) for p in patterns) and not _excluded(rel, exclude):
                yield Listed(rel, path, *_problem(entry, path, real_root))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink
    except OSError:  # a link that cannot be followed: listed as a file, which says why
        return False


def _inside(path: Path, real_root: Path) -> bool:
    # realpath, not Path.resolve: it never raises on a symlink loop
    return Path(os.path.realpath(path)).is_relative_to(real_root)


def _problem(entry: os.DirEntry[str], path: Path, real_root: Path) -> tuple[str | None, str]:
    """Why a matched entry cannot be read as a file: (None, "") when it can."""
    try:
        if entry.is_symlink() and not _inside(path, real_root):
            return OUTSIDE_ROOT, "symlink to a file outside the root"
        if entry.is_file():  # follows a symlink
            return None, ""
        return NOT_A_REGULAR_FILE, _kind(path)
    except OSError as exc:
        return os_problem(exc)


def _kind(path: Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "not a regular file"


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a file's path components match a glob's (`**` stands for any number of folders)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(parts[k:], rest) for k in range(len(parts)))
    return bool(parts) and fnmatchcase(parts[0], head) and _matches(parts[1:], rest)


def _may_hold(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a file below the folder `parts` may match the glob (so the folder is walked)."""
    if not parts:
        return bool(pattern)
    if not pattern:
        return False
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return True
    return bool(rest) and fnmatchcase(parts[0], head) and _may_hold(parts[1:], rest)


def _excluded(rel: str, exclude: Sequence[str]) -> bool:
    return any(linear_regex(_glob_to_regex(x)).fullmatch(rel) for x in exclude)


@cache
def _glob_to_regex(pattern: str) -> str:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out
