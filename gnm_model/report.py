"""`gnm eval`: generated samples measured against real data, written as report.json + report.html.

Steps (each failure of one sample is recorded, never fatal to the report):

1. Samples: every `*.json` token file (as `gnm generate` writes them) in the sample folder, or a
   score file (`.mid`, `.musicxml`, ...) tokenized with the run's vocabulary; each is decoded
   strictly (a sample that does not decode is listed with the reason and left out of the rest).
2. Real references: the shards' test split, per fine-tuning composer and per genre, decoded from
   the same tokens (at most `max_reference` pieces a group), measured with the same metrics.
3. The metric table: per composer, the mean of each metric over the generated samples and over the
   real pieces, and their distributions' overlapping area (1: indistinguishable).
4. The composer classifier: group k-fold accuracy and confusion on real pieces; then a model trained
   on every real piece classifies the samples.
5. Memorisation: the longest bar run and n-gram each sample shares with the train split.
6. Rendering: WAV (fluidsynth) and the first page as SVG (verovio) per sample, when available.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from gnm_model import metrics as M
from gnm_model.classifier import ClassifierConfig, ComposerClassifier, cross_validate, load_pieces
from gnm_model.data import TokenSplit
from gnm_model.memorisation import TrainingIndex
from pipeline.cli.common import progress, tracked
from pipeline.corpora import GENRES
from pipeline.errors import GnmError
from pipeline.io.shards import ShardSet
from pipeline.readers import SUPPORTED_EXTENSIONS
from pipeline.tokenizer import Tokenizer


@dataclass
class Sample:
    """One generated sample and everything measured on it."""

    name: str
    composer: str | None
    ids: list[int] = field(default_factory=list)
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    predicted: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    memorisation: dict[str, Any] = field(default_factory=dict)
    audio: str | None = None
    page: str | None = None
    render_error: str | None = None


def load_samples(folder: Path, tokenizer: Tokenizer) -> list[Sample]:
    """Every sample of a folder; unreadable ones carry their error."""
    if not folder.is_dir():
        raise GnmError(f"{folder}: sample folder does not exist")
    samples = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".json":
            try:
                body = json.loads(path.read_text())
                ids = [int(i) for i in body["ids"]]
                samples.append(Sample(path.stem, body.get("composer"), ids))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                samples.append(Sample(path.stem, None, error=f"unreadable token file: {exc}"))
        elif (
            path.suffix.lower() in SUPPORTED_EXTENSIONS and not (path.with_suffix(".json")).exists()
        ):
            from pipeline.readers import read_scores
            from pipeline.tokenizer.chain import tokenize_score

            try:
                ids = tokenize_score(read_scores(path)[0], tokenizer).ids
                samples.append(Sample(path.name, None, ids))
            except GnmError as exc:
                samples.append(Sample(path.name, None, error=str(exc)))
    return samples


def _decode(tokenizer: Tokenizer, ids: Sequence[int], name: str) -> Any:
    return tokenizer.decode_full(ids, strict=True, score_id=name).score


def bar_segments(ids: Sequence[int], bar_offsets: Sequence[int], bars: int, eos: int) -> list[list[int]]:  # fmt: skip
    """A piece as consecutive segments of `bars` bars, each a complete token sequence (the piece's
    prefix, the segment's bars, EOS). A last segment of fewer than half as many bars is dropped,
    unless it is the whole piece; `bars` 0 gives the piece itself."""
    ids = list(ids)
    if bars <= 0 or not bar_offsets:
        return [ids]
    prefix, body_end = ids[: bar_offsets[0]], len(ids) - 1  # the last token is EOS
    out = []
    for k in range(0, len(bar_offsets), bars):
        if k and len(bar_offsets) - k < bars / 2:
            break
        end = bar_offsets[k + bars] if k + bars < len(bar_offsets) else body_end
        out.append([*prefix, *ids[bar_offsets[k] : end], eos])
    return out


def reference_metrics(
    shards: ShardSet,
    groups: dict[str, Callable[[dict[str, Any]], bool]],
    max_pieces: int,
    bars: int = 0,
) -> dict[str, list[dict[str, float]]]:
    """Metrics of the test split's pieces, per named group (a predicate on the shard row); with
    `bars`, of their consecutive `bars`-bar segments (`bar_segments`), to compare like with like
    against samples of that length. At most `max_pieces` pieces or segments per group."""
    tokenizer = Tokenizer(shards.vocab)
    eos = shards.vocab.index["EOS"]
    columns = ["id", "composer_token", "genre", "tokens", "bar_offsets"]
    out: dict[str, list[dict[str, float]]] = {name: [] for name in groups}
    for path in shards.files("test"):
        for row in pq.read_table(path, columns=columns).to_pylist():
            wanted = [n for n, keep in groups.items() if keep(row) and len(out[n]) < max_pieces]
            if not wanted:
                continue
            for k, ids in enumerate(bar_segments(row["tokens"], row["bar_offsets"], bars, eos)):
                values = M.all_metrics(_decode(tokenizer, ids, f"{row['id']}#{k}"))
                for name in wanted:
                    if len(out[name]) < max_pieces:
                        out[name].append(values)
    return out


def metric_table(
    generated: dict[str, list[dict[str, float]]], real: dict[str, list[dict[str, float]]]
) -> list[dict[str, Any]]:
    """Per group and metric: generated mean, real mean, overlapping area of the distributions."""
    rows = []
    for group in sorted(set(generated) | set(real)):
        gen, ref = generated.get(group, []), real.get(group, [])
        names = sorted({k for d in gen + ref for k in d})
        for name in names:
            g = [d[name] for d in gen if name in d]
            r = [d[name] for d in ref if name in d]
            rows.append({
                "group": group, "metric": name, "generated_n": len(g), "real_n": len(r),
                "generated_mean": _mean(g), "real_mean": _mean(r),
                "overlap": M.overlapping_area(g, r) if g and r else math.nan,
            })  # fmt: skip
    return rows


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


@dataclass
class Fitted:
    """What `evaluate_samples` fits on the real data alone: the classifier, its grouped
    cross-validation and the training split's index. Pass one object to several calls on the
    same shards and composers and it is computed once."""

    classifier: ComposerClassifier | None = None
    cross_validation: dict[str, Any] | None = None
    index: TrainingIndex | None = None


def evaluate_samples(
    shards: ShardSet,
    samples: list[Sample],
    out_dir: Path,
    composers: Sequence[str],
    max_reference: int = 100,
    soundfont: Path | None = None,
    classifier_cfg: ClassifierConfig | None = None,
    log: Callable[[str], None] = print,
    reference_bars: int = 0,
    fitted: Fitted | None = None,
) -> dict[str, Any]:
    """Measure everything and write report.json, report.html and the media into `out_dir`.

    The real references are whole test pieces, or with `reference_bars` their segments of that
    many bars (compare samples of N bars with N-bar segments: most metrics depend on length).
    """
    from gnm_model.render import RenderError, midi_to_wav, musicxml_to_svg
    from pipeline.writers import write_score

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(shards.vocab)
    messages: list[str] = []
    if not samples:
        messages.append(
            "the sample folder holds no samples (*.json token files or score files): only the real references are reported"
        )
    scores = {}
    for s in tracked(samples, "metrics"):
        if s.error is None:
            try:
                scores[s.name] = _decode(tokenizer, s.ids, s.name)
                if (
                    s.composer is None
                    and s.ids
                    and shards.vocab.tokens[s.ids[0]].startswith("Composer_")
                ):
                    name = shards.vocab.tokens[s.ids[0]].split("_", 1)[1]
                    s.composer = None if name == "None" else name
            except GnmError as exc:
                s.error = f"does not decode: {exc}"
        if s.error is None:
            s.metrics = M.all_metrics(scores[s.name])
    log(f"eval: {len(scores)} of {len(samples)} samples decode")

    def has_composer(name: str) -> Callable[[dict[str, Any]], bool]:
        return lambda row: bool(row["composer_token"] == f"Composer_{name}")

    def has_genre(name: str) -> Callable[[dict[str, Any]], bool]:
        return lambda row: bool(row["genre"] == name)

    groups = {c: has_composer(c) for c in composers}
    for genre in GENRES:
        if genre != "other":  # a catch-all, no style to compare samples with
            groups[f"genre:{genre}"] = has_genre(genre)
    real = reference_metrics(shards, groups, max_reference, reference_bars)
    real = {k: v for k, v in real.items() if v}
    generated: dict[str, list[dict[str, float]]] = {}
    for s in samples:
        if s.metrics:
            generated.setdefault(s.composer or "None", []).append(s.metrics)
    table = metric_table(generated, real)
    log(
        f"eval: references from the test split: {', '.join(f'{k} {len(v)}' for k, v in real.items())}"
    )

    fitted = fitted if fitted is not None else Fitted()
    classifier: dict[str, Any] = {"cross_validation": None}
    if fitted.classifier is None:
        pieces = load_pieces(shards, composers)
        if len(set(pieces.labels)) >= 2:
            with progress((classifier_cfg or ClassifierConfig()).folds, "classifier folds") as advance:  # fmt: skip
                fitted.cross_validation = cross_validate(
                    pieces, shards.vocab, composers, classifier_cfg, advance
                )
            fitted.classifier = ComposerClassifier(shards.vocab, composers, classifier_cfg).fit(
                pieces.tokens, pieces.labels
            )
    if fitted.classifier is not None:
        classifier["cross_validation"] = fitted.cross_validation
        decodable = [s for s in samples if s.metrics]
        if decodable:
            probs = fitted.classifier.predict_proba([np.asarray(s.ids) for s in decodable])
            for s, p in zip(decodable, probs, strict=True):
                s.probabilities = {c: round(float(v), 4) for c, v in zip(composers, p, strict=True)}
                s.predicted = composers[int(p.argmax())]
            conditioned = [s for s in decodable if s.composer in composers]
            classifier["samples_classified_as_their_composer"] = (
                sum(s.predicted == s.composer for s in conditioned) / len(conditioned)
                if conditioned
                else None
            )
    else:
        messages.append(
            f"classifier skipped: real pieces of fewer than two of {', '.join(composers)}"
        )

    if fitted.index is None:
        fitted.index = TrainingIndex(TokenSplit.load(shards, "train"))
    index = fitted.index
    for s in samples:
        if s.metrics:
            s.memorisation = asdict(index.check(s.ids))

    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    for s in tracked(samples, "rendering"):
        if not s.metrics:
            continue
        score = scores[s.name]
        try:
            if soundfont is None:
                raise RenderError("no soundfont (apt-get install fluidsynth timgm6mb-soundfont)")
            write_score(score, media / f"{s.name}.mid")
            write_score(score, media / f"{s.name}.musicxml")
            midi_to_wav(media / f"{s.name}.mid", media / f"{s.name}.wav", soundfont)
            s.audio = f"media/{s.name}.wav"
            musicxml_to_svg(media / f"{s.name}.musicxml", media / f"{s.name}.svg")
            s.page = f"media/{s.name}.svg"
        except (GnmError, OSError) as exc:
            s.render_error = str(exc)
    if any(s.render_error for s in samples):
        messages.append(
            f"rendering failed for {sum(bool(s.render_error) for s in samples)} samples (see each sample)"
        )

    plots = _plots(generated, real, classifier, out_dir)
    report = {
        "format": "gnm-eval/1",
        "messages": messages,
        "composers": list(composers),
        "samples": [asdict(s) | {"ids": None} for s in samples],
        "metric_table": table,
        "reference_pieces": {k: len(v) for k, v in real.items()},
        "reference_bars": reference_bars or None,
        "classifier": classifier,
        "plots": plots,
        "near_copies": [s.name for s in samples if s.memorisation.get("flagged")],
    }
    (out_dir / "report.json").write_text(json.dumps(_finite(report), indent=1) + "\n")
    (out_dir / "report.html").write_text(_html(report))
    return report


def _finite(value: Any) -> Any:
    """JSON cannot hold NaN: write null."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _plots(
    generated: dict[str, list[dict[str, float]]],
    real: dict[str, list[dict[str, float]]],
    classifier: dict[str, Any],
    out_dir: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        "pitch_class_entropy",
        "groove_consistency",
        "scale_consistency",
        "polyphony",
        "ngram_repetition_rate",
        "structure_short",
    ]
    paths = []
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, name in zip(axes.flat, names, strict=True):
        labels, data = [], []
        for group, rows in sorted(real.items()):
            if not group.startswith("genre:"):
                labels.append(f"{group}\nreal")
                data.append([r[name] for r in rows if not math.isnan(r[name])] or [math.nan])
        for group, rows in sorted(generated.items()):
            labels.append(f"{group}\ngen")
            data.append([r[name] for r in rows if not math.isnan(r[name])] or [math.nan])
        if data:
            ax.boxplot(data, tick_labels=labels)
        ax.set_title(name)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "metrics.png", dpi=90)
    plt.close(fig)
    paths.append("metrics.png")
    cv = classifier.get("cross_validation")
    if cv:
        fig, ax = plt.subplots(figsize=(5, 4))
        matrix = np.asarray(cv["confusion"])
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(cv["composers"])), cv["composers"], rotation=45)
        ax.set_yticks(range(len(cv["composers"])), cv["composers"])
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"classifier, {cv['folds']}-fold by group: {100 * cv['accuracy']:.1f}%")
        fig.tight_layout()
        fig.savefig(out_dir / "confusion.png", dpi=90)
        plt.close(fig)
        paths.append("confusion.png")
    return paths


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def _html(report: dict[str, Any]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>GnM evaluation</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "td:first-child,td:nth-child(2){text-align:left}.sample{margin:1em 0;padding:1em;border:1px solid #ddd}img.page{max-width:900px;background:#fff}</style></head><body>",
             "<h1>GnM evaluation</h1>"]  # fmt: skip
    for message in report["messages"]:
        parts.append(f"<p class='message'><b>Note:</b> {e(message)}</p>")
    parts.append(
        "<h2>Metrics: generated against the real test split</h2><table id='metrics'><tr><th>group</th><th>metric</th><th>generated n</th><th>generated mean</th><th>real n</th><th>real mean</th><th>overlap</th></tr>"
    )
    for row in report["metric_table"]:
        parts.append(
            "<tr>"
            + "".join(
                f"<td>{_fmt(row[k])}</td>"
                for k in (
                    "group",
                    "metric",
                    "generated_n",
                    "generated_mean",
                    "real_n",
                    "real_mean",
                    "overlap",
                )
            )
            + "</tr>"
        )
    parts.append("</table>")
    for plot in report["plots"]:
        parts.append(f"<p><img class='plot' src='{e(plot)}' alt='{e(plot)}'></p>")
    cv = report["classifier"].get("cross_validation")
    if cv:
        parts.append(
            f"<h2>Composer classifier</h2><p>{cv['folds']}-fold by dedupe group on {cv['pieces']} real pieces: accuracy {100 * cv['accuracy']:.1f}%, balanced {100 * cv['balanced_accuracy']:.1f}%.</p>"
        )
        parts.append(
            "<table id='confusion'><tr><th>true \\ predicted</th>"
            + "".join(f"<th>{e(c)}</th>" for c in cv["composers"])
            + "</tr>"
        )
        for c, row in zip(cv["composers"], cv["confusion"], strict=True):
            parts.append(f"<tr><td>{e(c)}</td>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Samples</h2>")
    for s in report["samples"]:
        parts.append(
            f"<div class='sample'><h3>{e(s['name'])}</h3><p>composer {e(str(s['composer']))}"
        )
        if s["error"]:
            parts.append(f" — <b>left out</b>: {e(s['error'])}</p></div>")
            continue
        mem = s["memorisation"]
        flag = " <b>NEAR-COPY</b>" if mem.get("flagged") else ""
        parts.append(
            f"; classified as {e(str(s['predicted']))}; longest shared bar run {mem.get('longest_bar_run')} ({e(str(mem.get('bar_run_source')))}), longest shared n-gram {mem.get('longest_ngram')} tokens{flag}</p>"
        )
        if s["audio"]:
            parts.append(f"<audio controls preload='metadata' src='{e(s['audio'])}'></audio>")
        if s["page"]:
            parts.append(
                f"<p><img class='page' src='{e(s['page'])}' alt='first page of {e(s['name'])}'></p>"
            )
        if s["render_error"]:
            parts.append(f"<p>not rendered: {e(s['render_error'])}</p>")
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
