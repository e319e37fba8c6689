"""A finished run as one HTML file a stakeholder can open anywhere: mailed, offline, or printed.

Everything is inside the file: Plotly's JavaScript inlined once (the charts stay interactive),
photos and heatmaps as data URIs, the styles in the page. It makes no request to any server.
Printing it from a browser gives clean pages (each section is kept whole where it fits).
Built from the run directory alone, without TensorFlow, so the dashboard can make it at once.
"""

from __future__ import annotations

import base64
import html
import io
import platform
from datetime import datetime
from pathlib import Path

import plotly.offline
from PIL import Image

from core.network.distribute import placement_details, placement_in_words
from core.results import charts
from core.results.report_style import STYLE
from core.runs.directory import RunDirectory
from core.training.evaluation import accuracy_headline, mistake_caption, results_in_words

SAMPLES_PER_CLASS = 4
MISTAKES_SHOWN = 8


class ReportError(ValueError):
    """A run that has no results to report yet."""


def accuracy_interval(right: int, count: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an accuracy measured on `count` photos (scipy's binomial test)."""
    from scipy.stats import binomtest

    interval = binomtest(right, count).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def report_name(run: RunDirectory) -> str:
    from core.base.files import safe_name

    return f"{safe_name(run.title(), limit=80)} - report.html"


def build_report(run: RunDirectory) -> str:
    """The report of a finished (or stopped) run, as a complete HTML page.

    Raises:
        ReportError: the run has no evaluation yet.
    """
    evaluation = run.evaluation()
    if evaluation is None:
        raise ReportError("This run has no results yet: a report can be made once it has finished.")
    sections = [
        _data_section(run, evaluation),
        _network_section(run),
        _curves_section(run),
        _results_section(run, evaluation),
        _mistakes_section(run, evaluation),
        _collect_section(run, evaluation),
        _time_section(run),
        _use_section(run, evaluation),
    ]
    title = html.escape(run.title())
    notes = run.about().notes
    made = datetime.now().strftime("%d %b %Y %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
<script>{plotly.offline.get_plotlyjs()}</script>
</head><body><main>
<header><p class="kicker">Fine-Tune Studio report</p><h1>{title}</h1>
{f"<p class='notes'>{html.escape(notes)}</p>" if notes else ""}
<p class="made">Made {made} from run <code>{html.escape(run.id)}</code>.</p></header>
{"".join(sections)}
</main></body></html>"""


def write_report(run: RunDirectory, out: str | Path | None = None) -> Path:
    """Write the report to `out` (default: `report.html` in the run directory); returns its path."""
    from core.base.files import write_atomic

    path = Path(out) if out else run.path / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, build_report(run), durable=False)
    return path


def _section(title: str, body: str, css: str = "") -> str:
    return f'<section class="{css}"><h2>{html.escape(title)}</h2>{body}</section>'


def _figure(figure) -> str:
    figure.update_layout(template="plotly_white")
    return figure.to_html(
        include_plotlyjs=False, full_html=False, config={"displaylogo": False, "responsive": True}, default_width="100%"
    )


def _image(pixels_or_path, size: int = 112) -> str:
    """An `<img>` with the photo inside it (JPEG, data URI), or None when the photo is not on this machine."""
    if isinstance(pixels_or_path, (str, Path)):
        from core.data.images import load_rgb

        pixels = load_rgb(str(pixels_or_path), size)
    else:
        pixels = pixels_or_path
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buffer, format="JPEG", quality=85)
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _photo(path: str, size: int = 112) -> str | None:
    try:
        return _image(path, size)
    except Exception:  # noqa: BLE001 - a missing or unreadable photo only leaves its tile out
        return None


def _data_section(run: RunDirectory, evaluation: dict) -> str:
    from core.data.sources import source_label

    dataset = run.dataset() or {}
    status = run.raw_status()
    names = evaluation["class_names"]
    counts = dataset.get("counts") or {}
    total = sum(sum(row.values()) for row in counts.values())
    images = status.images or {}
    skipped = len(dataset.get("skipped") or [])
    per_class = ", ".join(f"{html.escape(name)} ({sum((counts.get(name) or {}).values())})" for name in names)
    split = (
        f"{images.get('train', 0)} were used to train, {images.get('val', 0)} to choose and check during training, "
        f"and {images.get('test', 0)} were kept aside for the final test."
        if images
        else ""
    )
    paragraph = (
        f"<p>{total} photos of {len(names)} classes from “{html.escape(source_label(run.config().data))}”: "
        f"{per_class}. {split}"
        + (f" {skipped} files could not be used (not photos, or damaged) and were left out." if skipped else "")
        + "</p>"
    )
    tiles = []
    items = dataset.get("items") or []
    for name in names:
        paths = [item["path"] for item in items if item.get("label") == name][: SAMPLES_PER_CLASS * 3]
        shown = [tile for tile in (_photo(p) for p in paths) if tile][:SAMPLES_PER_CLASS]
        if shown:
            tiles.append(f'<figure class="row"><figcaption>{html.escape(name)}</figcaption>{"".join(shown)}</figure>')
    grid = (
        f'<div class="samples">{"".join(tiles)}</div>'
        if tiles
        else "<p class='muted'>Sample photos are not shown: the photos are not on the machine that made this report.</p>"
    )
    return _section("The data", paragraph + grid)


def _network_section(run: RunDirectory) -> str:
    from core.network.backbones import BACKBONES
    from core.results.compare import settings_frame

    config = run.config()
    status = run.raw_status()
    spec = BACKBONES.get(config.backbone)
    network = spec.label if spec else config.backbone
    size = status.image_size or config.image_size
    start = {"imagenet": "pretrained on ImageNet", "none": "from random weights (no pretraining)"}.get(
        status.weights_kind, f"from {status.weights or 'given weights'}"
    )
    learns = config.unfreeze.describe(spec) if spec else str(config.unfreeze)
    phase2 = (
        f"Phase 2 ran {_epochs(config.finetune_epochs)} at a learning rate of {config.finetune_learning_rate:g}, "
        f"letting {html.escape(learns)} learn as well ({status.trainable_params_phase2:,} weights)."
        if config.finetune_epochs
        else "There was no phase 2: only the head was trained."
    )
    words = (
        f"<p>The network is {html.escape(network)}, {start}. Photos were resized to {size} × {size} pixels. "
        f"Phase 1 trained a new head for {_epochs(config.head_epochs)} at a learning rate of "
        f"{config.head_learning_rate:g}, with the network frozen ({status.trainable_params_phase1:,} weights "
        f"learning). {phase2} Batches of {config.batch_size} photos; augmentation: {html.escape(_augmentation(config))}."
        "</p>"
    )
    settings = settings_frame([run]).drop(columns="differs")
    settings.columns = ["value"]
    table = settings.to_html(classes="table", border=0, escape=True)
    return _section(
        "The network and its settings", words + f"<details><summary>Every setting</summary>{table}</details>"
    )


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")


def _augmentation(config) -> str:
    from core.base.settings import get_value
    from core.network.config import SETTINGS

    if config.augmentation == type(config.augmentation).off():
        return "none"
    parts = []
    for info in SETTINGS.values():
        if info.name.startswith("augmentation."):
            value = get_value(config, info.name)
            if value and value != "none":
                parts.append(f"{(info.declaration.label or info.name).lower()} {value}")
    return ", ".join(parts) or "none"


def _curves_section(run: RunDirectory) -> str:
    from core.training.monitor import RunProgress

    progress = RunProgress()
    events, _ = run.read_events(0)
    progress.update(events)
    if not progress.has_curves:
        return _section("Training", "<p class='muted'>This run recorded no training curves.</p>")
    accuracy = _figure(charts.training_curve(progress, "accuracy", "Accuracy (higher is better)"))
    loss = _figure(charts.training_curve(progress, "loss", "Loss (lower is better)"))
    text = (
        "<p>Training accuracy is measured on the photos it learns from; validation accuracy on photos it does "
        "not learn from. A widening gap means it starts to memorise.</p>"
    )
    return _section("Training", text + accuracy + loss)


def _results_section(run: RunDirectory, evaluation: dict) -> str:
    count = evaluation["count"]
    right = round(evaluation["accuracy"] * count)
    low, high = accuracy_interval(right, count)
    split = accuracy_headline(evaluation).removeprefix(f"Accuracy on {count} ")
    status = run.status()
    stopped = (
        "This run was stopped before its end: these are the results of its most accurate epoch."
        if status.state == "stopped"
        else status.kept_in_words()
    )
    stopped = f"<p class='muted'>{stopped}</p>" if stopped else ""
    headline = (
        f'<p class="headline"><strong>{evaluation["accuracy"]:.1%}</strong> accuracy: {right} of {count} '
        f"{split}.</p><p>With {count} photos, the accuracy on photos like these is between "
        f"<strong>{low:.1%}</strong> and <strong>{high:.1%}</strong> (<abbr title='a 95% Wilson score interval'>95% confidence</abbr>). "
        f"More {'test' if evaluation['split'] == 'test' else 'validation'} photos narrow this range.</p>"
    )
    rows = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{r['photos']}</td><td>{html.escape(r['found'])}</td>"
        f"<td>{html.escape(r['right'])}</td></tr>"
        for r in results_in_words(evaluation)
    )
    table = (
        '<table class="table"><thead><tr><th>class</th><th>photos</th><th>how many it found</th>'
        f"<th>how often it was right</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    matrix = _figure(charts.confusion_matrix(evaluation))
    return _section("How good it is", headline + stopped + matrix + "<h3>Class by class</h3>" + table)


def _mistakes_section(run: RunDirectory, evaluation: dict) -> str:
    from core.results.explain import heatmap_note, heatmap_path

    mistakes = evaluation.get("misclassified") or []
    if not mistakes:
        return _section("Mistakes", "<p>No mistakes on the test photos.</p>")
    tiles, with_heatmaps = [], 0
    for mistake in mistakes[:MISTAKES_SHOWN]:
        photo = _photo(mistake["path"], 160)
        heat = heatmap_path(run, mistake["path"], None)
        heatmap = _photo(str(heat), 160) if heat.exists() else None
        with_heatmaps += heatmap is not None
        caption = html.escape(mistake_caption(mistake))
        pictures = (photo or "<div class='missing'>photo not on this machine</div>") + (heatmap or "")
        tiles.append(f"<figure>{pictures}<figcaption>{caption}</figcaption></figure>")
    heat_note = (
        f" Beside a photo, its heatmap of where the model looked for its answer. {html.escape(heatmap_note(run))}"
        if with_heatmaps
        else ""
    )
    text = (
        f"<p>{len(mistakes)} test photos were given the wrong class. The {min(len(mistakes), MISTAKES_SHOWN)} "
        f"it was most sure about are below.{heat_note}</p>"
    )
    return _section("Mistakes, most confident first", text + f'<div class="mistakes">{"".join(tiles)}</div>')


def _collect_section(run: RunDirectory, evaluation: dict) -> str:
    """What to collect next: the learning curves once the Evaluate page has drawn them, and the pair mixed up most."""
    from core.base.tasks import read_result
    from core.results.collect_next import collect_words, confused_pairs
    from core.training.evaluation import photos_of

    stored = read_result(run.path / "review" / "collect.json")
    if stored and isinstance(stored.get("words"), list):
        words, curves = [str(line) for line in stored["words"]], stored.get("curves") or {}
    else:
        tested = photos_of(int(evaluation.get("count", 0)), evaluation.get("split", "test"))
        words, curves = collect_words({"curves": {}}, confused_pairs(evaluation), tested), {}
    if not words:
        return ""
    body = "".join(f"<p>{html.escape(line)}</p>" for line in words)
    if curves.get("curves"):
        body += _figure(charts.class_learning_curves(curves))
    else:
        body += (
            "<p class='muted'>Each class's learning curve appears here once it has been drawn on the Evaluate page.</p>"
        )
    return _section("What to collect next", body)


def _time_section(run: RunDirectory) -> str:
    from core.results.compare import duration

    status = run.raw_status()
    seconds = duration(run)
    started = datetime.fromtimestamp(status.started).strftime("%d %b %Y %H:%M") if status.started else "unknown"
    stages = {
        "preparing": "preparing the photos",
        "features": "computing the frozen layers' output (fast mode)",
        "head": "phase 1",
        "finetune": "phase 2",
        "evaluating": "the final test",
    }
    parts = [f"{stages[key]} {value:.0f} s" for key, value in status.stage_seconds.items() if key in stages]
    machine = status.machine or {}
    where = (
        f"{machine.get('cores', '?')} CPU cores ({html.escape(str(machine.get('processor') or 'processor unknown'))})"
        + (f" and {html.escape(', '.join(machine['gpus']))}" if machine.get("gpus") else ", no GPU")
        + f", {html.escape(str(machine.get('system', '')))}, TensorFlow {html.escape(str(machine.get('tensorflow', '?')))}"
        if machine
        else "a machine this run did not record"
    )
    total = f"{seconds / 60:.1f} minutes" if seconds is not None else "an unknown time"
    devices = placement_in_words(status.placement, status.node)
    body = (
        f"<p>Training started {started} and took {total}"
        + (f" ({', '.join(parts)})" if parts else "")
        + f", on {where}."
        + (f" Trained on {html.escape(devices)}." if devices else "")
        + "</p>"
        + (
            f"<details><summary>Details for specialists</summary><p>{html.escape(details)}.</p></details>"
            if (details := placement_details(status.placement, status.node))
            else ""
        )
    )
    return _section("How long it took", body)


def _use_section(run: RunDirectory, evaluation: dict) -> str:
    from core.results.export import existing
    from core.results.formats import FORMATS

    size = run.image_size()
    names = evaluation["class_names"]
    verified = [v for v in (existing(run, key) for key in FORMATS) if v is not None and v.passed]
    exports = (
        "<ul>"
        + "".join(
            f"<li><strong>{html.escape(v.title)}</strong> for {html.escape(FORMATS[v.format].use)}: "
            f"{v.accuracy:.1%} on the test photos when loaded with {html.escape(v.runtime)}, "
            f"{v.size_bytes / 1e6:.1f} MB.</li>"
            for v in verified
        )
        + "</ul>"
        if verified
        else "<p>Other formats (phones, web pages, ONNX) can be made and checked on the Evaluate page, or with "
        "<code>python -m core export RUN --format all</code>.</p>"
    )
    body = (
        "<p>The model is the file <code>model.keras</code> (Keras 3), in the run's download. It takes RGB photos "
        f"as numbers from 0 to 255, of any size (it resizes them to {size} × {size} itself and applies the "
        "network's own scaling), and returns one probability per class, summing to 1, in this order: "
        + ", ".join(f"{k}: {html.escape(name)}" for k, name in enumerate(names))
        + ".</p>"
        + "<pre><code>"
        + html.escape(
            "import keras, numpy as np\nfrom PIL import Image\n\n"
            'model = keras.models.load_model("model.keras")\n'
            'photo = np.asarray(Image.open("photo.jpg").convert("RGB"), dtype="float32")\n'
            "probabilities = model.predict(photo[None])[0]\n"
            f"CLASSES = {names!r}\n"
            "print(CLASSES[int(probabilities.argmax())])"
        )
        + "</code></pre>"
        + "<h3>Checked exports</h3>"
        + exports
        + f"<p class='muted'>Report made with Python {platform.python_version()}.</p>"
    )
    return _section("How to use the model", body)
