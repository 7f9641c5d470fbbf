"""music21's naming conventions that the fast readers reproduce, so that titles and tempi match.

Only what several readers share lives here: the articles music21 moves to the front of a title
(`"Ale is Dear, The"` -> `"The Ale is Dear"`) and the number it gives a tempo word.
"""

from __future__ import annotations

# music21's articles (text.articleReference, every language).
ARTICLES = frozenset([
    "al-", "the", "a", "an", "der", "die", "das", "des", "dem", "den", "ein", "eine", "einer",
    "einem", "einen", "de", "het", "'t", "een", "el", "la", "los", "las", "un", "una", "unos",
    "unas", "o", "os", "as", "um", "uma", "uns", "umas", "le", "les", "l'", "une", "du", "il",
    "lo", "i", "gli", "un'", "uno", "del", "dello", "della", "dei", "degli", "delle", "de la",
])  # fmt: skip

# music21's quarter-note BPM for a tempo word (tempo.defaultTempoValues).
TEMPO_WORDS = {
    "larghissimo": 16, "largamente": 32, "grave": 40, "molto adagio": 40, "largo": 46,
    "lento": 52, "adagio": 56, "slow": 56, "langsam": 56, "larghetto": 60, "adagietto": 66,
    "andante": 72, "andantino": 80, "andante moderato": 83, "maestoso": 88, "moderato": 92,
    "moderate": 92, "allegretto": 108, "animato": 120, "allegro moderato": 128, "allegro": 132,
    "fast": 132, "schnell": 132, "allegrissimo": 140, "molto allegro": 144, "très vite": 144,
    "vivace": 160, "vivacissimo": 168, "presto": 184, "prestissimo": 208,
}  # fmt: skip


def article_first(title: str) -> str:
    """A trailing article moved to the front, as music21 does: "Ale is Dear, The" -> "The Ale is Dear"."""
    if "," not in title:
        return title
    head, _, trailing = title.rpartition(",")
    trailing = trailing.strip()
    return f"{trailing} {head}" if trailing.lower() in ARTICLES else title


def tempo_word_bpm(text: str) -> int | None:
    """music21's BPM for tempo text: the whole text, else its last word that is a tempo word."""
    found = TEMPO_WORDS.get(text.lower())
    if found is None:
        for word in text.split(" "):
            found = TEMPO_WORDS.get(word.lower(), found)
    return found
