"""Safe opening of MusicXML sources: size-capped bytes of a `.xml`/`.musicxml` file or of the root
document inside an `.mxl` zip, and a prolog check that refuses entity declarations.

Nothing is ever extracted to disk (a `../` member name is only a key into the archive), a member's
declared size is checked before anything is decompressed and its real size while it is, and no DTD
or external entity is ever fetched.
"""

from __future__ import annotations

import pyexpat
import zipfile
import zlib
from pathlib import Path
from xml.etree import ElementTree

from pipeline.errors import ScoreParseError

MAX_DOCUMENT_BYTES = (
    64 << 20
)  # the largest real scores are ~10 MB of XML; a bomb is refused at once
MAX_CONTAINER_BYTES = 1 << 20
MAX_MEMBERS = 10_000
_CHUNK = 1 << 20
_CONTAINER = "META-INF/container.xml"


class _RootReached(Exception):
    """Raised by the prolog check at the root element: the prolog is over."""

    def __init__(self, name: str) -> None:
        self.name = name


class _EntityDeclared(Exception):
    """Raised by the prolog check at an entity declaration."""


def read_document(path: Path) -> bytes:
    """The MusicXML bytes of `path` (the root document for `.mxl`), at most MAX_DOCUMENT_BYTES."""
    if path.suffix.lower() == ".mxl":
        return _read_mxl(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise _too_large(path, size)
        return path.read_bytes()
    except OSError as exc:
        raise ScoreParseError(f"{path}: cannot read it ({exc})", "missing_file") from exc


def root_tag(data: bytes, path: Path) -> str:
    """The root element's name; ScoreParseError (`malformed_xml`) on any entity declaration.

    expat would expand internal entities (billion laughs) and the standard tree builder has no
    hook to stop it, so this pass reads only the prolog, with its own expat parser, and refuses.
    """
    parser = pyexpat.ParserCreate()
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_args: object) -> None:
        raise _EntityDeclared

    def stop(name: str, _attrs: object) -> None:
        raise _RootReached(name)

    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.StartElementHandler = stop
    try:
        parser.Parse(data, True)
    except _RootReached as reached:
        return reached.name
    except _EntityDeclared:
        raise ScoreParseError(
            f"{path}: the document declares XML entities, which are refused (entity expansion "
            "attacks); remove the <!ENTITY> declarations from its DOCTYPE",
            "malformed_xml",
        ) from None
    except pyexpat.ExpatError as exc:
        raise ScoreParseError(f"{path}: not well-formed XML ({exc})", "malformed_xml") from exc
    raise ScoreParseError(f"{path}: the document has no root element", "malformed_xml")


def _read_mxl(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise ScoreParseError(f"{path}: {len(infos)} zip members", "bad_zip")
            names = [info.filename for info in infos]
            name = _rootfile(archive, names, path) or _first_score_member(names)
            if name is None:
                raise ScoreParseError(
                    f"{path}: the zip holds no MusicXML document ({len(names)} members)",
                    "not_musicxml_zip",
                )
            return _read_member(archive, archive.getinfo(name), MAX_DOCUMENT_BYTES, path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise ScoreParseError(f"{path}: not a readable zip archive ({exc})", "bad_zip") from exc
    except (RuntimeError, ValueError) as exc:  # encrypted members, corrupt headers
        raise ScoreParseError(f"{path}: unreadable zip member ({exc})", "bad_zip") from exc


def _rootfile(archive: zipfile.ZipFile, names: list[str], path: Path) -> str | None:
    """The first rootfile of META-INF/container.xml when it names a member, else None."""
    if _CONTAINER not in names:
        return None
    info = archive.getinfo(_CONTAINER)
    if info.file_size > MAX_CONTAINER_BYTES:
        return None
    data = _read_member(archive, info, MAX_CONTAINER_BYTES, path)
    try:
        root_tag(data, path)
        container = ElementTree.fromstring(data)
    except (ScoreParseError, ElementTree.ParseError):
        return None  # a broken container falls back to the first score member, as music21 does
    for rootfile in container.iter():
        if rootfile.tag.rpartition("}")[2] == "rootfile":
            full_path = rootfile.get("full-path")
            return full_path if full_path in names else None
    return None


def _first_score_member(names: list[str]) -> str | None:
    """music21's choice: the first member outside META-INF with a MusicXML suffix."""
    for name in names:
        if "META-INF" in name:
            continue
        if name.lower().endswith((".xml", ".musicxml")):
            return name
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Path) -> bytes:
    """A member's bytes, refused before decompression when its declared size is over `limit` and
    during it when the real size is (a header may lie)."""
    if info.file_size > limit:
        raise _too_large(path, info.file_size)
    parts: list[bytes] = []
    total = 0
    with archive.open(info) as member:
        while chunk := member.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise _too_large(path, total)
            parts.append(chunk)
    return b"".join(parts)


def _too_large(path: Path, size: int) -> ScoreParseError:
    return ScoreParseError(
        f"{path}: the MusicXML document is {size} bytes, over the {MAX_DOCUMENT_BYTES} byte limit",
        "too_large",
    )
