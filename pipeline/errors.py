"""The error hierarchy: one base class, a few subclasses whose messages name the file and the fix."""

from __future__ import annotations


class GnmError(Exception):
    """Base class of every error GnM raises on purpose; the CLI prints it as one line."""


class CorpusError(GnmError):
    """A corpus declaration or data root is invalid."""


class ScoreParseError(GnmError):
    """A file could not be read into a canonical score (empty, truncated, malformed, unknown type).

    `reason` is the machine-readable quarantine reason (`empty_file`, `bad_midi`, `encoding`,
    `malformed_xml`, `bad_zip`, `not_musicxml_zip`, `unsupported_format`, ...; `parse_error` when
    nothing more specific is known).
    """

    def __init__(self, message: str, reason: str = "parse_error") -> None:
        self.reason = reason
        super().__init__(message)


class ScoreValidationError(GnmError):
    """A canonical score breaks one of its invariants (unsorted, negative, out-of-range pitch, gaps)."""


class MeterError(GnmError):
    """A bar's meter has no exact rule onto the supported meters; `reason` is `meter:<n/d>`."""

    def __init__(self, meter: str, detail: str = "") -> None:
        self.meter = meter
        self.reason = f"meter:{meter}"
        super().__init__(
            f"meter {meter} has no decomposition rule onto the supported meters"
            + (f" ({detail})" if detail else "")
            + "; add a rule to the meter table in params.yaml or quarantine the piece"
        )


class TokenizeError(GnmError):
    """A score cannot be encoded, or a token sequence is not valid Extended REMI."""


class CheckpointError(GnmError):
    """A checkpoint is missing, tampered with, or built for another vocabulary."""


class Unsupported(GnmError):
    """A fast reader met a construct it does not handle; the reference reader reads the item.

    `what` names the construct (`score-timewise`, `kern:spine-type`, `abc:voice-overlay`, ...);
    ingest counts the fallback as `reader_fallback:<what>`.
    """

    def __init__(self, what: str, detail: str = "") -> None:
        self.what = what
        super().__init__(
            f"not handled by the fast reader: {what}" + (f" ({detail})" if detail else "")
        )
