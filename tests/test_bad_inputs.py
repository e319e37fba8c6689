"""Every bad input of `tests/bad_inputs.py`, through the engine, the CLI and the Data page.

The rule: a clear reason for each file left out, the rest of the data used, no traceback.
"""

import json
import re

import numpy as np
import pytest

from core.data.datasets import scan_dataset
from core.data.images import ImageRejected, inspect_image, load_rgb
from core.network.config import RunConfig
from tests.bad_inputs import ACCEPTED, HOSTILE_ZIPS, JUNK, REJECTED, messy_dataset, write_bad_files, write_odd_photos
from tests.test_cli import TINY, cli

# These tests are about the data: the head alone shows that training goes through (phase 2 would add
# about 15 s of graph building to each, and is tested elsewhere).
HEAD_ONLY = [*TINY, "--finetune-epochs", "0"]


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_engine_rejects_each_bad_file_with_its_reason(case, tmp_path):
    path = write_bad_files(tmp_path, [case])[case]
    with pytest.raises(ImageRejected, match=REJECTED[case][2]):
        inspect_image(path)


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_engine_reads_each_odd_photo_as_upright_rgb(case, tmp_path):
    path = write_odd_photos(tmp_path)[case]
    inspect_image(path)
    pixels = load_rgb(path, 24)
    assert pixels.shape == (24, 24, 3) and pixels.dtype == np.uint8


@pytest.fixture
def messy(tmp_path):
    return messy_dataset(tmp_path / "messy")


def test_scan_uses_the_rest_and_gives_every_reason(messy):
    report = scan_dataset(messy)
    reasons = {entry.path.rsplit("/", 1)[-1]: entry.reason for entry in report.skipped}
    for case, (name, _, pattern) in REJECTED.items():
        assert re.search(pattern, reasons.get(name, "")), f"{case}: {reasons.get(name)!r}"
    used = {item.path.rsplit("/", 1)[-1] for item in report.items}
    assert {name for name, _ in ACCEPTED.values()} <= used
    assert not (set(JUNK) | {"._a.png"}) & (used | set(reasons)), "OS litter must be neither used nor reported"
    assert report.class_totals() == {"green": 8 + len(ACCEPTED), "red": 8}


@pytest.mark.heavy
def test_cli_scan_names_each_file_left_out(messy):
    result = cli("scan", str(messy), timeout=120)
    assert result.returncode == 0, result.stderr
    for name, _, pattern in REJECTED.values():
        line = next((line for line in result.stdout.splitlines() if name in line), "")
        assert re.search(pattern, line), f"{name} not explained in:\n{result.stdout}"
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.heavy
def test_cli_trains_on_the_rest_of_a_messy_dataset(messy, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--data", str(messy), *HEAD_ONLY, "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    dataset = json.loads((out / "dataset.json").read_text())
    assert len(dataset["skipped"]) == len(REJECTED)
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["count"] > 0


@pytest.mark.heavy
def test_data_page_lists_each_file_left_out_with_its_reason(messy, monkeypatch):
    from tests.test_pages import page

    monkeypatch.setenv("STUDIO_DATA_ROOT", str(messy.parent))
    at = page("data", data_kind="Folder on this server").run()
    at.selectbox(key="server_folder").set_value("messy").run()
    assert not at.exception
    assert any(f"{len(REJECTED)} file(s) left out" in e.label for e in at.expander)
    shown = "\n".join(frame.value.to_csv() for frame in at.dataframe)
    for name, _, pattern in REJECTED.values():
        line = next((line for line in shown.splitlines() if name in line), "")
        assert re.search(pattern, line), f"{name} not explained on the page"


def _shape(tmp_path, name):
    """Build one awkward dataset shape; return its folder."""
    from tests.conftest import CLASS_COLOURS, write_image

    root = tmp_path / name

    def photos(folder, label, count, start=0):
        for k in range(start, start + count):
            write_image(root / folder / label / f"{label}_{k:03d}.png", CLASS_COLOURS[label])

    if name == "empty class folder":
        photos("", "red", 6), photos("", "green", 6)
        (root / "blue").mkdir()
    elif name == "class with one image":
        photos("", "red", 6), photos("", "green", 6), photos("", "blue", 1)
    elif name == "class missing from a split":
        photos("train", "red", 6), photos("train", "green", 6), photos("test", "red", 3)
    elif name == "more classes in test than train":
        photos("train", "red", 6), photos("train", "green", 6)
        photos("test", "red", 2), photos("test", "green", 2), photos("test", "blue", 2)
    elif name == "100x imbalance":
        photos("", "red", 200), photos("", "green", 2)
    elif name == "nested deeper":
        for label in ("red", "green"):
            for k in range(6):
                write_image(root / label / "2024" / "summer" / f"{k}.png", CLASS_COLOURS[label])
    elif name == "copies across train and test":
        photos("train", "red", 6), photos("train", "green", 6), photos("test", "red", 2), photos("test", "green", 2)
        (root / "test" / "red" / "red_000.png").write_bytes((root / "train" / "red" / "red_001.png").read_bytes())
    return root


SHAPES = {
    "empty class folder": "Class folder 'blue' has no usable images",
    "class with one image": "Class 'blue' has only 1 image",
    "class missing from a split": "The test folder has no images of: green",
    "more classes in test than train": "class 'blue' has no training images",
    "100x imbalance": "Classes are unbalanced (200 vs 2 images)",
    "nested deeper": "Split 12 images",
    "copies across train and test": "1 image(s) appear in more than one split",
}


@pytest.mark.heavy
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_cli_trains_on_awkward_dataset_shapes_and_says_what_it_found(name, tmp_path, capsys):
    """`python -m core train` on each awkward shape, run in this process (TensorFlow is started once)."""
    from core.commands.cli import main

    root = _shape(tmp_path, name)
    out = tmp_path / "run"
    code = main(["train", "--data", str(root), *HEAD_ONLY, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.out[-2000:] + printed.err[-2000:]
    assert SHAPES[name] in printed.out, printed.out
    assert json.loads((out / "status.json").read_text())["state"] == "succeeded"


@pytest.fixture(params=sorted(HOSTILE_ZIPS))
def hostile_zip(request, tmp_path):
    make, message = HOSTILE_ZIPS[request.param]
    path = tmp_path / f"{request.param}.zip"
    path.write_bytes(make())
    return path, message


def test_cli_refuses_each_hostile_zip_in_one_line(hostile_zip, tmp_path, capsys):
    """`python -m core scan` on each hostile zip, run in this process: exit 2, one line saying why."""
    from core.commands.cli import main

    path, message = hostile_zip
    assert main(["scan", str(path)]) == 2
    printed = capsys.readouterr()
    assert message in printed.out + printed.err and "Traceback" not in printed.out + printed.err
    assert len(printed.err.strip().splitlines()) == 1, printed.err
    assert not (tmp_path / "evil.png").exists() and not any(tmp_path.parent.glob("evil.png"))


def test_data_page_shows_each_hostile_zip_as_an_error(hostile_zip):
    from tests.test_pages import page

    path, message = hostile_zip
    at = page("data", draft=RunConfig(data=str(path))).run()
    assert not at.exception
    assert any(message in error.value for error in at.error), [e.value for e in at.error]


@pytest.mark.heavy
def test_a_file_name_that_is_not_utf8_is_left_out_with_a_reason_everywhere(make_dataset, tmp_path, monkeypatch):
    """A Latin-1 name from an old camera or zip: Python keeps it as surrogates, which no file or page can show."""
    import os

    from tests.test_pages import page

    root = make_dataset({"red": 5, "green": 5}, root=tmp_path / "root" / "latin")
    os.rename(os.fsencode(root / "red" / "red_00.png"), os.fsencode(root / "red") + b"/caf\xe9.png")
    result = cli("train", "--data", str(root), *HEAD_ONLY, "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    skipped = json.loads((tmp_path / "run" / "dataset.json").read_text())["skipped"]
    assert [entry["path"].rsplit("/", 1)[-1] for entry in skipped] == ["caf\ufffd.png"]
    assert "not valid text" in skipped[0]["reason"]

    monkeypatch.setenv("STUDIO_DATA_ROOT", str(tmp_path / "root"))
    at = page("data", data_kind="Folder on this server").run()
    at.selectbox(key="server_folder").set_value("latin").run()
    assert not at.exception
    assert any("1 file(s) left out" in e.label for e in at.expander)
