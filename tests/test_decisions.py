"""The photo review's decisions: kept beside the dataset, applied by every scan, undone one by one, used by the next run."""

import csv
import time
from pathlib import Path

import pytest

from core.base.errors import InputError
from core.data.datasets import scan_dataset
from core.data.decisions import OLD_FOLDER, decide, decisions_about, decisions_path, summary, undo
from tests.conftest import CLASS_COLOURS, SHARED, needs_shared, tiny_config, write_image


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_decisions_change_what_a_scan_reports_and_never_touch_the_files(make_dataset, isolated_workspace):
    root = make_dataset({"red": 6, "green": 6})
    before = _files(root)
    decide(root, str(root / "red" / "red_00.png"), "move", was="red", to="green")
    decide(root, str(root / "green" / "green_01.png"), "exclude", was="green")
    assert decisions_path(root).is_relative_to(isolated_workspace) and not decisions_path(root).is_relative_to(root)
    report = scan_dataset(root)
    assert report.class_totals() == {"green": 6, "red": 5}
    assert any(s.path.endswith("green_01.png") and "photo review" in s.reason for s in report.skipped)
    assert next(i.label for i in report.items if i.path.endswith("red_00.png")) == "green"
    assert summary(root) == "1 photo moved to another class, 1 left out" and len(report.decisions) == 2
    undo(root, str(root / "green" / "green_01.png"))
    assert scan_dataset(root).class_totals() == {"green": 7, "red": 5} and summary(root).endswith("another class")
    decide(root, str(root / "red" / "red_00.png"), "move", was="red", to="red")  # moved back: nothing left
    assert decisions_about(root) == {} and _files(root) == before


def test_decisions_kept_before_their_folder_was_renamed_still_apply_and_move_on_the_next(make_dataset):
    root = make_dataset({"red": 4, "green": 4})
    decide(root, str(root / "red" / "red_00.png"), "exclude", was="red")
    old = decisions_path(root, decisions_path(root).parent.parent / OLD_FOLDER)
    old.parent.mkdir(parents=True)
    decisions_path(root).rename(old)  # as versions before 3 kept it
    assert scan_dataset(root).class_totals() == {"green": 4, "red": 3}
    decide(root, str(root / "green" / "green_00.png"), "exclude", was="green")
    assert not old.exists() and len(decisions_about(root)) == 2 and decisions_path(root).exists()


@pytest.mark.heavy
@pytest.mark.real
@needs_shared
def test_a_relabelled_photo_trains_under_its_new_class_and_the_run_records_it(make_dataset, tmp_path):
    from core.results.review import label_review
    from core.runs.directory import RunDirectory
    from core.training.worker import train_run

    root = make_dataset({"red": 8, "green": 8}, size=64)  # pretrained features tell colours apart at 64 px
    decide(root, str(root / "red" / "red_03.png"), "move", was="red", to="green")
    decide(root, str(root / "green" / "green_05.png"), "exclude", was="green")
    weights = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    config = tiny_config(
        str(root), backbone="mobilenet_v2_0.35", weights=str(weights), finetune_epochs=0, head_epochs=8
    )
    run = RunDirectory.create(tmp_path / "runs", config, run_id="after-review")
    assert train_run(run, echo=lambda line: None) == "succeeded", run.status().message
    used = run.dataset()["decisions"]
    assert {(d["path"], d["action"], d["to"]) for d in used} == {
        ("red/red_03.png", "move", "green"),
        ("green/green_05.png", "exclude", ""),
    }
    rows = {
        path: (split, label)
        for split, label, path in (r.split(",", 2) for r in run.splits_path.read_text().splitlines()[1:])
    }
    assert rows[str(root / "red" / "red_03.png")][1] == "green"
    assert str(root / "green" / "green_05.png") not in rows

    # The review finds the red photo labelled green, judged by the pretrained network (which never saw the labels),
    # and says it looks red.
    assert rows[str(root / "red" / "red_03.png")][0] in ("train", "val")
    reviewed, _, judged_by = label_review(run)
    assert judged_by.startswith("the pretrained MobileNetV2") and len(reviewed) == sum(
        s != "test" for s, _ in rows.values()
    )
    flagged = {row.path: row for row in reviewed if row.issue == "label"}
    moved = flagged[str(root / "red" / "red_03.png")]
    assert (moved.given, moved.suggested) == ("green", "red") and moved.quality < 0.5
    assert [row.issue for row in reviewed[: len(flagged)]] == ["label"] * len(flagged)  # most suspicious first
    assert all(0 <= row.quality <= 1 and row.split in ("training", "validation") for row in reviewed)
    from core.commands.cli import main

    assert main(["review", str(run.path), "--out", str(tmp_path / "review.csv")]) == 0
    table = list(csv.DictReader((tmp_path / "review.csv").open()))
    assert list(table[0]) == ["path", "given", "suggested", "quality", "issue"] and len(table) == len(reviewed)
    assert [row["path"] for row in table] == [row.path for row in reviewed]
    row = next(row for row in table if row["path"] == moved.path)
    assert (row["given"], row["suggested"], row["issue"]) == ("green", "red", "label")

    # Photos nobody has sorted: each gets the model's class, grouped by class, the least certain first.
    unsorted = tmp_path / "unsorted"
    for k in range(3):
        write_image(unsorted / f"r{k}.png", CLASS_COLOURS["red"], size=64)
        write_image(unsorted / "deeper" / f"g{k}.png", CLASS_COLOURS["green"], size=64)
    (unsorted / "notes.txt").write_text("not a photo")
    (unsorted / "broken.png").write_bytes(b"not a png")
    assert main(["suggest", str(run.path), str(unsorted), "--out", str(tmp_path / "suggestions.csv")]) == 0
    table = list(csv.DictReader((tmp_path / "suggestions.csv").open()))
    assert list(table[0]) == ["path", "suggested", "confidence", "unlike_all"] and len(table) == 7  # not the .txt
    by_name = {Path(row["path"]).name: row for row in table}
    assert {by_name[f"r{k}.png"]["suggested"] for k in range(3)} == {"red"}
    assert {by_name[f"g{k}.png"]["suggested"] for k in range(3)} == {"green"}
    assert by_name["broken.png"] == {
        "path": str(unsorted / "broken.png"),
        "suggested": "",
        "confidence": "",
        "unlike_all": "",
    }
    answered = [row for row in table if row["suggested"]]
    assert answered == sorted(
        answered, key=lambda row: (["green", "red"].index(row["suggested"]), float(row["confidence"]))
    )
    assert all(row["unlike_all"] in ("true", "false") for row in answered)


def test_near_copies_are_paired_most_alike_first_within_and_across_splits():
    import numpy as np

    from core.results.review import near_copies

    rng = np.random.default_rng(0)
    features = rng.normal(size=(6, 32)).astype(np.float32)
    features[4] = features[1] * 1.7 + 0.001  # the same picture, brighter: same direction
    features[5] = features[2] + rng.normal(0, 0.05, 32)  # re-encoded
    rows = [("train", "red", f"p{k}.png") for k in range(4)] + [("test", "red", "p4.png"), ("val", "green", "p5.png")]
    pairs = near_copies(features, rows)
    assert [tuple(p["paths"]) for p in pairs] == [("p1.png", "p4.png"), ("p2.png", "p5.png")]
    assert pairs[0]["splits"] == ["training", "test"] and pairs[1]["labels"] == ["red", "green"]
    assert pairs[0]["similarity"] >= pairs[1]["similarity"] >= 0.985


def test_the_review_choices_read_and_record_each_decision(make_dataset):
    """The Photo review's choices (keep, move to each other class, leave out), in words and recorded."""
    from core.data.decisions import apply_choice, choice_of, choice_words, choices, decision_for

    root = make_dataset({"red": 2, "green": 2, "blue": 2})
    photo = str(next((root / "red").iterdir()))
    options = choices(["blue", "green", "red"], "red")
    assert options == ["keep", "move:blue", "move:green", "exclude"]
    assert [choice_words(o, "red") for o in options] == ["Keep as red", "Move to blue", "Move to green", "Leave out"]
    assert choice_of(decision_for(root, photo)) == "keep"
    apply_choice(root, photo, "red", "move:green")
    assert choice_of(decision_for(root, photo)) == "move:green" and decision_for(root, photo).to == "green"
    apply_choice(root, photo, "red", "exclude")
    assert choice_of(decision_for(root, photo)) == "exclude"
    apply_choice(root, photo, "red", "keep")
    assert decision_for(root, photo) is None


def test_a_forged_choice_is_refused_in_words(make_dataset):

    from core.base.errors import InputError
    from core.data.decisions import apply_choice

    root = make_dataset({"red": 2, "green": 2})
    with pytest.raises(InputError, match="Unknown decision"):
        apply_choice(root, str(next((root / "red").iterdir())), "red", "delete:everything")


def test_photos_without_labels_join_a_class_by_decision_and_leave_by_undo(make_dataset, isolated_workspace):
    from core.data.decisions import unsorted_home

    root = make_dataset({"red": 4, "green": 4})
    before = _files(root)
    upload = unsorted_home() / "upload-1"
    new = [write_image(upload / f"new_{k}.png", CLASS_COLOURS["red"]) for k in range(2)]
    (upload / "broken.png").write_bytes(b"not a png")
    for path in new:
        decide(root, str(path), "add", was="", to="red")
    decide(root, str(upload / "broken.png"), "add", was="", to="green")
    decide(root, str(new[0]), "add", was="", to="red")  # twice: one decision
    report = scan_dataset(root)
    assert report.class_totals() == {"green": 4, "red": 6} and summary(root) == "3 photos without labels added"
    added = [item for item in report.items if item.path in map(str, new)]
    assert [(item.label, item.format, item.width) for item in added] == [("red", "PNG", 32)] * 2  # as scanned
    assert any(s.path.endswith("broken.png") for s in report.skipped)  # said, not used
    assert len(report.decisions) == 3 and _files(root) == before  # the dataset's own files untouched
    undo(root, str(new[1]))
    assert scan_dataset(root).class_totals() == {"green": 4, "red": 5}
    decide(root, str(new[1]), "add", was="", to="purple")  # a class the dataset does not have: not used
    assert scan_dataset(root).class_totals() == {"green": 4, "red": 5}


def test_only_uploaded_photos_without_labels_can_be_added(make_dataset, isolated_workspace, tmp_path):
    from core.data.decisions import unsorted_home

    root = make_dataset({"red": 4, "green": 4})
    outside = write_image(tmp_path / "elsewhere" / "secret.png", CLASS_COLOURS["red"])
    sneaky = unsorted_home() / "upload-1" / ".." / ".." / ".." / outside.relative_to(outside.anchor)
    for photo in (str(outside), str(sneaky), "/etc/passwd"):
        with pytest.raises(InputError, match="Only photos uploaded as photos without labels"):
            decide(root, photo, "add", was="", to="red")
    with pytest.raises(InputError, match="Unknown decision"):
        decide(root, str(outside), "copy", was="red")
    assert decisions_about(root) == {}


def test_old_uploads_of_photos_without_labels_go_unless_a_photo_was_added_from_them(
    make_dataset, isolated_workspace, tmp_path
):
    """The app's data folder does not fill up with uploads nobody used; an upload a photo was added from stays
    (the next run needs it), as does a recent one; a link is never followed out of the folder."""
    import os

    from core.data.decisions import prune_unsorted, unsorted_home

    root = make_dataset({"red": 4, "green": 4})
    folders = {name: unsorted_home() / name for name in ("old-unused", "old-used", "recent", "current")}
    for folder in folders.values():
        write_image(folder / "photo.png", CLASS_COLOURS["red"])
    decide(root, str(folders["old-used"] / "photo.png"), "add", was="", to="red")
    outside = write_image(tmp_path / "precious" / "keep.png", CLASS_COLOURS["red"])
    (unsorted_home() / "a-link").symlink_to(outside.parent, target_is_directory=True)
    week_ago = time.time() - 8 * 24 * 3600
    for name in ("old-unused", "old-used", "current"):
        os.utime(folders[name], (week_ago, week_ago))
    assert prune_unsorted(keep=folders["current"]) == 1
    assert sorted(p.name for p in unsorted_home().iterdir()) == ["a-link", "current", "old-used", "recent"]
    assert outside.exists() and scan_dataset(root).class_totals() == {"green": 4, "red": 5}
