"""The report (one HTML file that opens anywhere), the runs table and comparison, and their CLI."""

import html
import json
import re
import shutil

import pytest

from core.results.collect_next import confused_pairs
from core.results.compare import comparison_text, facts_frame, per_class_frame, runs_frame, settings_frame
from core.results.explain import heatmap_path
from core.results.report import ReportError, accuracy_interval, build_report
from core.runs.directory import RunDirectory
from tests.conftest import recorded_run, write_image
from tests.test_cli import TINY, cli


@pytest.fixture
def two_runs(make_dataset, tmp_path):
    data = make_dataset({"red": 8, "green": 8, "blue": 8})
    first = recorded_run(tmp_path / "runs", "first", data, seed=1)
    second = recorded_run(tmp_path / "runs", "second", data, seed=2, batch_size=16, head_epochs=3)
    return first, second


def test_the_accuracy_interval_is_wilsons():
    low, high = accuracy_interval(26, 36)
    assert (round(low, 3), round(high, 3)) == (0.560, 0.842)
    low, high = accuracy_interval(10, 10)
    assert high == 1.0 and 0.7 < low < 0.75  # all right still leaves room below


def test_the_report_holds_everything_and_asks_no_server_for_anything(two_runs):
    run = two_runs[0]
    run.set_about(name="Colour squares", notes="Made for <the board> & co")
    mistake = run.evaluation()["misclassified"][0]
    write_image(heatmap_path(run, mistake["path"], None), (250, 230, 30), size=48)  # as the explain task keeps it
    page = build_report(run)
    assert page.count("Plotly.newPlot") == 3  # accuracy, loss, confusion matrix
    assert page.count('<script type="text/javascript">/**') <= 1 and "plotly.js" in page  # inlined once
    markup = re.sub(r"<script.*?</script>", "", page, flags=re.DOTALL)  # plotly.js names its site in a string
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)  # nothing fetched from anywhere
    assert "cdn.plot.ly" not in markup
    assert "Made for &lt;the board&gt; &amp; co" in page  # a note is text, never markup
    evaluation = run.evaluation()
    right = round(evaluation["accuracy"] * evaluation["count"])
    low, high = accuracy_interval(right, evaluation["count"])
    assert f"{low:.1%}</strong> and <strong>{high:.1%}" in page
    for name in ("red", "green", "blue"):
        assert f"<figcaption>{name}</figcaption>" in page  # the sample grid, a row per class
    assert page.count("data:image/jpeg;base64,") >= 3 * 4 + 2  # samples, a mistake and its heatmap
    assert "where the model looked" in page and "Made by LayerCAM at two more detailed layers: warm colours" in page
    assert "2 CPU cores (test CPU), no GPU" in page and "Trained on" not in page  # a run that did not record it
    facts = {"devices": ["GPU:0", "GPU:1"], "replicas": 2, "strategy": "MirroredStrategy", "precision": "mixed_float16"}
    facts |= {"precision_why": "auto", "batch_per_device": 32, "global_batch": 64, "learning_rate_scale": 1.4142}
    run.update_status(placement=facts, node={"host": "gpu-7", "pid": 12})
    page = html.unescape(build_report(run))
    assert "Trained on 2 graphics cards (GPUs) of the cluster's computer gpu-7 at once, 64 photos at a time." in page
    assert (  # the devices' names for specialists, one click away
        "<summary>Details for specialists</summary><p>2 devices of the cluster's node gpu-7 at once (GPU:0, GPU:1, "
        "MirroredStrategy) in mixed float16: 32 photos per device, 64 per step, learning rates ×1.41 for the larger "
        "batch.</p>" in page
    )
    assert "CLASSES = ['blue', 'green', 'red']" in html.unescape(page)
    assert "@media print" in page


def test_a_report_from_another_machine_says_what_it_cannot_show(two_runs, tmp_path):
    run = two_runs[0]
    shutil.rmtree((run.dataset() or {})["root"])  # the photos are not here, as on a server a run file was opened on
    page = build_report(run)
    assert "Sample photos are not shown" in page
    assert "photo not on this machine" in page


def test_a_run_without_results_has_no_report(make_dataset, tmp_path):
    run = recorded_run(tmp_path, "unfinished", make_dataset({"red": 4, "green": 4}))
    run.evaluation_path.unlink()
    with pytest.raises(ReportError, match="no results yet"):
        build_report(run)


def test_the_comparison_shows_what_differs(two_runs):
    first, second = two_runs
    settings = settings_frame([first, second])
    assert sorted(settings.index[settings["differs"]]) == ["Batch size", "Head epochs"]
    # In words for the pages and the report; as the CLI takes them for `core compare`.
    plain, raw = settings.iloc[:, 0], settings_frame([first, second], plain=False).iloc[:, 0]
    assert plain["Fast mode"] == "yes" and raw["Fast mode"] == "True"
    assert plain["Validation photos"] == "taken from the photos" and raw["Validation photos"] == "None"
    assert plain["Optimizer (both phases)"] == "Adam" and plain["Devices to train on"].startswith("Every GPU")
    assert plain["Model to keep when training finishes"].startswith("Auto: the most accurate")
    facts = facts_frame([first, second])
    assert facts.loc["epochs trained"].tolist() == ["2 of 2", "4 of 4"]
    assert facts.loc["time to train"].tolist() == ["1.5 min", "1.5 min"]
    classes = per_class_frame([first, second])
    assert sorted(classes.index) == ["blue", "green", "red"]
    row = first.evaluation()["per_class"][0]
    assert classes.loc[row["class"]].iloc[0] == row["recall"]
    table = runs_frame([second, first])
    assert table["id"].tolist() == ["second", "first"]
    assert table.loc[0, "settings"] == "32 px, 3 + 1 epochs, batch 16, fast mode"
    text = comparison_text([first, second])
    assert "Settings that differ:" in text and "Batch size" in text and "other settings are the same" in text


@pytest.mark.heavy
def test_the_cli_lists_compares_reports_and_keeps_runs(two_runs, tmp_path):
    root = tmp_path / "runs"
    listed = cli("runs", "--root", str(root))
    assert listed.returncode == 0 and "first" in listed.stdout and "second" in listed.stdout
    compared = cli("runs", "--root", str(root), "--compare", "first", "second")
    assert compared.returncode == 0, compared.stderr
    assert "Batch size" in compared.stdout and "Head epochs" in compared.stdout
    assert cli("runs", "--root", str(root), "--compare", "first").returncode == 2
    missing = cli("runs", "--root", str(root), "--compare", "first", "nope")
    assert missing.returncode == 2 and "no run called 'nope'" in missing.stderr
    report = cli("report", str(root / "first"), "--out", str(tmp_path / "out" / "report.html"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!DOCTYPE html>")
    packed = cli("pack", str(root / "first"), "--out", str(tmp_path / "first.studio.zip"))
    assert packed.returncode == 0, packed.stderr
    opened = cli("unpack", str(tmp_path / "first.studio.zip"), "--root", str(tmp_path / "elsewhere"))
    assert opened.returncode == 0 and (tmp_path / "elsewhere" / "first" / "model.keras").exists()
    refused = cli("unpack", str(root / "first" / "config.json"), "--root", str(tmp_path / "elsewhere"))
    assert refused.returncode == 2 and "not a Fine-Tune Studio run file" in refused.stderr


@pytest.mark.heavy
def test_a_trained_run_kept_as_a_file_predicts_on_another_server(make_dataset, tmp_path):
    data = make_dataset({"red": 8, "green": 8})
    trained = cli("train", "--data", str(data), *TINY, "--out", str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr
    assert RunDirectory(tmp_path / "run").raw_status().machine["cores"] >= 1
    assert cli("pack", str(tmp_path / "run"), "--out", str(tmp_path / "run.studio.zip")).returncode == 0
    assert cli("unpack", str(tmp_path / "run.studio.zip"), "--root", str(tmp_path / "there")).returncode == 0
    photo = next(data.rglob("red_00.png"))
    answer = cli("predict", str(tmp_path / "there" / "run"), str(photo), "--top", "2")
    assert answer.returncode == 0, answer.stderr
    assert re.search(r"red_00.png: (red|green) \d+\.\d%, (red|green) \d+\.\d%", answer.stdout)
    report = cli("report", str(tmp_path / "there" / "run"), "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr


def _answers(run, wrong: list[str]) -> None:
    """Rewrite `run`'s evaluation so that exactly the photos `wrong` were answered wrongly."""
    evaluation = run.evaluation()
    evaluation["misclassified"] = [
        {"path": path, "true": "red", "predicted": "green", "confidence": 0.9} for path in wrong
    ]
    run.evaluation_path.write_text(json.dumps(evaluation))


def test_mcnemar_says_whether_two_runs_differ_by_more_than_chance(make_dataset, tmp_path):
    from core.results.compare import paired_test, paired_tests

    data = make_dataset({"red": 40, "green": 40})
    first = recorded_run(tmp_path / "runs", "first", data, seed=1, name="A")
    second = recorded_run(tmp_path / "runs", "second", data, seed=2, name="B")
    # The example needs 19 disagreements: the test split is widened to 30 photos for both runs.
    rows = first.splits()
    widened = "split,label,path\n" + "".join(
        f"{'test' if k < 30 else 'train'},{label},{path}\n" for k, (_, label, path) in enumerate(rows)
    )
    for run in (first, second):
        run.splits_path.write_text(widened)
        evaluation = run.evaluation()
        evaluation["count"] = 30
        run.evaluation_path.write_text(json.dumps(evaluation))
    photos = [path for split, _, path in first.splits() if split == "test"]
    _answers(first, photos[:14] + photos[25:27])  # B right on 14 that A gets wrong; both wrong on 2
    _answers(second, photos[14:19] + photos[25:27])  # B wrong on 5 that A gets right
    test = paired_test(first, second)
    assert (test.photos, test.only_first, test.only_second) == (30, 5, 14)
    assert round(test.chance, 4) == 0.0636  # scipy's exact binomial test, two-sided
    assert paired_tests([first, second]) == [
        "“B” is right on 14 photos “A” gets wrong and wrong on 5 that “A” gets right: a difference this large "
        "happens by chance 6% of the time, so this difference may be luck: more test photos would tell."
    ]
    _answers(second, [])
    assert (
        "so the difference is unlikely to be luck: “B” does better on photos like these."
        in paired_tests([first, second])[0]
    )
    _answers(first, photos[:20])
    assert "happens by chance less than 1% of the time" in paired_tests([first, second])[0]
    _answers(first, [])
    assert paired_tests([first, second]) == [
        "“A” and “B” give the same right and wrong answers on all 30 photos both were tested on."
    ]
    other = recorded_run(
        tmp_path / "runs", "other", make_dataset({"red": 6, "green": 6}, root=tmp_path / "o"), name="C"
    )
    assert paired_test(first, other) is None and paired_tests([first, other]) == []  # not the same photos
    (second.splits_path).unlink()
    assert paired_test(first, second) is None  # opened from a file without its photo list


def test_the_report_says_what_to_collect_next(two_runs):
    run = two_runs[0]
    page = html.unescape(build_report(run))
    pair = confused_pairs(run.evaluation())[0]
    assert (
        "What to collect next" in page
        and f"“{pair['classes'][0]}” and “{pair['classes'][1]}” are mixed up most" in page
    )
    assert "learning curve appears here once it has been drawn on the Evaluate page" in page
    curves = {
        "fractions": [0.25, 0.5, 0.75, 1.0],
        "curves": {"red": [0.4, 0.5, 0.6, 0.8], "<b>": [1, 1, 1, 1]},
        "draws": 3,
    }
    (run.path / "review").mkdir()
    words = ["More photos of “red” would probably help.", "“<b>” has levelled off."]
    (run.path / "review" / "collect.json").write_text(json.dumps({"curves": curves, "pairs": [], "words": words}))
    page = build_report(run)
    assert "More photos of “red” would probably help." in page and "“&lt;b&gt;” has levelled off." in page
    assert (
        "learning curve appears here" not in page
        and "<b>" not in page.split("What to collect next")[1].split("</section>")[0]
    )
