"""A run kept as one file and opened again: the round trip, and every file that must be refused."""

import hashlib
import io
import json
import zipfile

import pytest

from core.base.errors import InputError
from core.runs.directory import RunDirectory, list_runs
from core.runs.status import RunState
from core.sharing import links as sharing
from core.sharing.run_files import RunFileRefused, delete_run, imported_from, pack_run, unpack_run
from tests.conftest import recorded_run


@pytest.fixture
def kept(make_dataset, tmp_path):
    run = recorded_run(tmp_path / "here", "first-run", make_dataset({"red": 6, "green": 6}))
    run.set_about(name="Reds and greens", notes="for the board")
    return run, pack_run(run)


def test_a_kept_run_opens_on_another_server_with_its_results(kept, tmp_path):
    run, content = kept
    opened = unpack_run(content, tmp_path / "there")
    assert opened.id == "first-run"
    assert (opened.title(), opened.about().notes) == ("Reds and greens", "for the board")
    mistakes = [dict(m, path="") for m in run.evaluation()["misclassified"]]
    assert opened.evaluation() == {**run.evaluation(), "misclassified": mistakes}  # its photos are not here
    assert opened.history() == run.history()
    assert opened.model_path.read_bytes() == run.model_path.read_bytes()
    assert opened.status().state is RunState.SUCCEEDED and opened.raw_status().pid is None
    assert imported_from(opened)["run"] == "first-run"
    assert not (opened.path / "splits.csv").exists()  # the photos and where they were stay behind
    assert [r.id for r in list_runs(tmp_path / "there")] == ["first-run"]


def test_opening_the_same_file_twice_keeps_both_under_different_ids_and_names(kept, tmp_path):
    _, content = kept
    first, second = unpack_run(content, tmp_path / "there"), unpack_run(content, tmp_path / "there")
    assert (first.id, second.id) == ("first-run", "first-run-2")
    assert second.title() == "Reds and greens (opened from a file)"


def _rezip(content: bytes, change) -> bytes:
    """The run file with `change(files, manifest)` applied, the manifest's hashes left as they were."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files.pop("studio-run.json"))
    change(files, manifest)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("studio-run.json", json.dumps(manifest))
    return buffer.getvalue()


def _add(name: str, data: bytes):
    def change(files, manifest):
        files[name] = data
        manifest["files"][name] = hashlib.sha256(data).hexdigest()

    return change


def _relisted(files, manifest):
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


HOSTILE = {
    "not a zip": (lambda content: b"PK\x03\x04 truncated", "not a Fine-Tune Studio run file"),
    "a zip of photos": (
        lambda content: _zip_of({"red/a.png": b"x"}),
        "no readable studio-run.json",
    ),
    "a path out of the folder": (lambda content: _rezip(content, _add("../../evil.sh", b"rm -rf /")), "never holds"),
    "an extra file": (lambda content: _rezip(content, _add("run.py", b"import os")), "never holds"),
    "a changed model": (
        lambda content: _rezip(content, lambda files, manifest: files.update({"model.keras": b"other"})),
        "damaged: model.keras",
    ),
    "a zip bomb": (
        lambda content: _rezip(content, _add("config.json", b"0" * (3 * 1024 * 1024))),
        "larger than a run's ever is",
    ),
    "a deflated bomb within the size limits": (
        lambda content: _rezip(content, _add("evaluation.json", b" " * (20 * 1024 * 1024))),
        "zip bomb",
    ),
    "no model": (
        lambda content: _rezip(content, lambda files, manifest: (files.pop("model.keras"), _relisted(files, manifest))),
        "has no model.keras",
    ),
    "a run still training": (
        lambda content: _rezip(
            content,
            lambda files, manifest: (
                files.update({"status.json": json.dumps({"state": "running"}).encode()}),
                _relisted(files, manifest),
            ),
        ),
        "had not finished",
    ),
    "unreadable settings": (
        lambda content: _rezip(
            content, lambda files, manifest: (files.update({"config.json": b"{"}), _relisted(files, manifest))
        ),
        "settings or results cannot be read",
    ),
}


def _zip_of(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_or_damaged_file_is_refused_in_words_and_nothing_is_written(kept, tmp_path, case):
    make, message = HOSTILE[case]
    root = tmp_path / "there"
    root.mkdir()
    with pytest.raises(RunFileRefused, match=message):
        unpack_run(make(kept[1]), root)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil.sh").exists()


def test_only_a_finished_run_is_kept_as_a_file(make_dataset, tmp_path):
    run = recorded_run(tmp_path, "busy", make_dataset({"red": 4, "green": 4}))
    run.update_status(state=RunState.RUNNING)
    with pytest.raises(RunFileRefused, match="Only a finished or stopped run"):
        pack_run(run)


def test_deleting_a_run_removes_its_folder_and_links_but_never_its_photos(make_dataset, tmp_path):
    photos = make_dataset({"red": 4, "green": 4})
    run = recorded_run(tmp_path / "runs", "doomed", photos)
    token = sharing.make_link(run.id)
    delete_run(run)
    assert not run.path.exists() and list_runs(tmp_path / "runs") == []
    assert len(list(photos.rglob("*.png"))) == 8
    with pytest.raises(sharing.ShareRefused):
        sharing.open_link(token)


def test_a_training_run_is_not_deleted(make_dataset, tmp_path):
    run = recorded_run(tmp_path, "busy", make_dataset({"red": 4, "green": 4}))
    run.update_status(state=RunState.QUEUED)  # no process recorded: read as waiting, not interrupted
    with pytest.raises(InputError, match="Stop it first"):
        delete_run(run)
    assert RunDirectory(run.path).config_path.exists()


def _every_string(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _every_string(item)
    elif isinstance(value, list):
        for item in value:
            yield from _every_string(item)
    elif isinstance(value, str):
        yield value


def test_a_crafted_file_naming_photos_elsewhere_on_the_server_reads_none_of_them(kept, tmp_path, monkeypatch):
    """The attack from the issue: config, scan and mistakes pointed at a folder outside the data root, hashes redone."""
    from core.data.datasets import DatasetError
    from core.data.sources import resolve_source, source_label
    from core.results.report import build_report
    from tests.conftest import make_photos

    secret = make_photos(tmp_path / "private", {"payroll": 2, "faces": 2})
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(tmp_path / "datasets"))
    photo = str(next(secret.rglob("*.png")))

    def point_outside(files, manifest):
        config = json.loads(files["config.json"])
        files["config.json"] = json.dumps(config | {"data": str(secret), "val_data": "../../private"}).encode()
        dataset = json.loads(files["dataset.json"])
        dataset["root"] = str(secret)
        dataset["items"] = [dict(item, path=photo) for item in dataset["items"]]
        files["dataset.json"] = json.dumps(dataset).encode()
        evaluation = json.loads(files["evaluation.json"])
        evaluation["misclassified"] = [dict(m, path=photo) for m in evaluation["misclassified"]]
        evaluation["misclassified"][0]["path"] = "data-root:../private/payroll/payroll_00.png"
        evaluation["misclassified"][1]["path"] = "studio-data:share-secret"
        files["evaluation.json"] = json.dumps(evaluation).encode()
        _relisted(files, manifest)

    opened = unpack_run(_rezip(kept[1], point_outside), tmp_path / "there")
    for name in ("config.json", "dataset.json", "evaluation.json"):
        strings = list(_every_string(json.loads((opened.path / name).read_text())))
        assert not [s for s in strings if str(tmp_path) in s or ".." in s or "secret" in s], name
    assert opened.config().data == "elsewhere:private"
    assert {m["path"] for m in opened.evaluation()["misclassified"]} == {""}
    with pytest.raises(DatasetError, match="not on this server"):
        resolve_source(opened.config().data)  # the Data page scans nothing
    assert source_label(opened.config().data) == "private"
    report = build_report(opened)
    assert str(tmp_path) not in report and "payroll_0" not in report


def test_a_run_file_carries_no_server_path_and_finds_its_photos_again_on_the_same_server(
    make_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(tmp_path / "datasets"))
    photos = make_dataset({"red": 6, "green": 6}, root=tmp_path / "datasets" / "colours")
    run = recorded_run(tmp_path / "here", "here-run", photos)
    content = pack_run(run)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        text = b"".join(archive.read(name) for name in archive.namelist() if name != "model.keras")
    assert str(tmp_path).encode() not in text and b"data-root:colours/" in text
    opened = unpack_run(content, tmp_path / "there")
    assert opened.config().data == str(photos.resolve())
    assert opened.evaluation() == run.evaluation()  # every photo found where it was
    assert opened.splits() == run.splits()  # so its exports can be checked here


@pytest.mark.heavy
def test_opening_a_bomb_takes_no_memory_and_leaves_nothing(tmp_path):
    """A 1 GiB model of zeros packs into about a megabyte: refused before inflating, with memory measured."""
    import subprocess
    import sys

    from tests.conftest import REPO

    bomb = tmp_path / "bomb.studio.zip"
    files = {"config.json": b"{}", "status.json": b"{}", "evaluation.json": b"{}"}
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        digest = hashlib.sha256()
        with archive.open("model.keras", "w", force_zip64=True) as handle:
            zeros = bytes(16 * 1024 * 1024)
            for _ in range(64):
                handle.write(zeros)
                digest.update(zeros)
        for name, data in files.items():
            archive.writestr(name, data)
        listed = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        manifest = {"format": 1, "run": "bomb", "files": {**listed, "model.keras": digest.hexdigest()}}
        archive.writestr("studio-run.json", json.dumps(manifest))
    assert bomb.stat().st_size < 8 * 1024 * 1024
    code = (
        "import resource, sys\n"
        "from core.sharing.run_files import RunFileRefused, unpack_run\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    unpack_run(sys.argv[1], sys.argv[2])\nexcept RunFileRefused as error:\n    print(error)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    root = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-c", code, str(bomb), str(root)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    refusal, grown = done.stdout.strip().splitlines()
    assert "zip bomb" in refusal
    assert int(grown) < 64 * 1024  # kilobytes: it grew by less than 64 MB
    assert list(root.iterdir()) == []
