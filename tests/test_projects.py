"""A run kept as one file and opened again: the round trip, and every file that must be refused."""

import hashlib
import io
import json
import zipfile

import pytest

from core import sharing
from core.errors import InputError
from core.projects import ProjectRefused, delete_run, imported_from, pack_run, unpack_run
from core.runs import RunDirectory, list_runs
from core.status import RunState
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
    assert opened.evaluation() == run.evaluation()
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
    """The project with `change(files, manifest)` applied, the manifest's hashes left as they were."""
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
    "not a zip": (lambda content: b"PK\x03\x04 truncated", "not a Fine-Tune Studio project"),
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
    with pytest.raises(ProjectRefused, match=message):
        unpack_run(make(kept[1]), root)
    assert list(root.iterdir()) == []
    assert not (tmp_path / "evil.sh").exists()


def test_only_a_finished_run_is_kept_as_a_file(make_dataset, tmp_path):
    run = recorded_run(tmp_path, "busy", make_dataset({"red": 4, "green": 4}))
    run.update_status(state=RunState.RUNNING)
    with pytest.raises(ProjectRefused, match="Only a finished or stopped run"):
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
