"""Scanning, layouts, splits, zips and the demo set."""

import os
import stat
import zipfile

import pytest

from core.data.datasets import DatasetError, scan_dataset
from core.data.demo_data import DEMO_CLASSES, ensure_demo_dataset
from core.data.sources import resolve_source
from core.data.splits import make_splits
from core.data.uploads import extract_zip
from tests.conftest import write_image


def test_class_folders_are_classes_and_junk_is_ignored(make_dataset):
    root = make_dataset({"red": 4, "green": 3})
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "red" / "Thumbs.db").write_bytes(b"junk")
    (root / "__MACOSX").mkdir()
    (root / "green" / "notes.txt").write_text("not a photo")
    (root / "green" / "empty.png").write_bytes(b"")
    report = scan_dataset(root)
    assert report.layout == "classes"
    assert report.class_names == ["green", "red"]
    assert report.class_totals() == {"green": 3, "red": 4}
    reasons = {os.path.basename(s.path): s.reason for s in report.skipped}
    assert reasons == {"notes.txt": "not an image (.txt file)", "empty.png": "empty file (0 bytes)"}
    assert report.formats() == {"PNG": 7}
    assert report.problems_for_training() == []


def test_images_nested_deeper_belong_to_their_top_folder(make_dataset, tmp_path):
    root = make_dataset({"red": 2, "green": 2})
    write_image(root / "red" / "2024" / "june" / "deep.png", (200, 0, 0))
    assert scan_dataset(root).class_totals()["red"] == 3


def test_given_splits_are_used_and_val_becomes_test_when_there_is_no_test(make_dataset, tmp_path):
    root = tmp_path / "split"
    make_dataset({"red": 10, "green": 10}, root=root / "train")
    make_dataset({"red": 4, "green": 4}, root=root / "validation")
    report = scan_dataset(root)
    assert report.layout == "split"
    assert report.counts() == {"green": {"train": 10, "val": 4}, "red": {"train": 10, "val": 4}}
    plan = make_splits(report, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert len(plan.test) == 8 and {i.split for i in plan.test} == {"val"}
    assert len(plan.val) == 4 and len(plan.train) == 16
    assert any("test set" in note for note in plan.notes)


def test_a_class_only_in_test_is_left_out_with_a_reason(make_dataset, tmp_path):
    root = tmp_path / "split"
    make_dataset({"red": 4, "green": 4}, root=root / "train")
    make_dataset({"red": 2, "blue": 2}, root=root / "test")
    report = scan_dataset(root)
    assert report.class_names == ["green", "red"]
    assert sum("has no training images" in s.reason for s in report.skipped) == 2
    assert any("test folder has no images of: green" in w for w in report.warnings)


def test_splits_are_stratified_repeatable_and_disjoint(make_dataset):
    report = scan_dataset(make_dataset({"red": 20, "green": 10}))
    plan = make_splits(report, 0.2, 0.2, seed=7)
    again = make_splits(report, 0.2, 0.2, seed=7)
    other = make_splits(report, 0.2, 0.2, seed=8)
    assert plan.rows() == again.rows()
    assert plan.rows() != other.rows()
    paths = [r["path"] for r in plan.rows()]
    assert len(paths) == len(set(paths)) == 30
    for part, expected in ((plan.test, {"red": 4, "green": 2}), (plan.val, {"red": 4, "green": 2})):
        counts = {label: sum(i.label == label for i in part) for label in ("red", "green")}
        assert counts == expected


def test_tiny_classes_keep_at_least_one_training_image(make_dataset):
    report = scan_dataset(make_dataset({"red": 1, "green": 2, "blue": 3}))
    plan = make_splits(report, 0.3, 0.3, seed=0)
    assert {i.label for i in plan.train} == {"red", "green", "blue"}
    assert any("only 1 image" in w for w in report.warnings)


def test_one_class_cannot_train(make_dataset):
    report = scan_dataset(make_dataset({"red": 5}))
    assert "at least 2 classes" in report.problems_for_training()[0]


def test_empty_folder_and_empty_class(tmp_path, make_dataset):
    (tmp_path / "nothing").mkdir()
    assert "No usable images" in scan_dataset(tmp_path / "nothing").problems_for_training()[0]
    root = make_dataset({"red": 3, "green": 3})
    (root / "blue").mkdir()
    report = scan_dataset(root)
    assert report.class_names == ["green", "red"]
    assert any("'blue' has no usable images" in w for w in report.warnings)


def test_duplicates_across_splits_are_warned(make_dataset, tmp_path):
    root = tmp_path / "split"
    make_dataset({"red": 3, "green": 3}, root=root / "train")
    make_dataset({"red": 3, "green": 3}, root=root / "test")
    copied = root / "test" / "red" / "red_00.png"
    copied.write_bytes((root / "train" / "green" / "green_01.png").read_bytes())
    report = scan_dataset(root)
    assert any(w.startswith("1 image(s) appear in more than one split") for w in report.warnings)


def test_copies_in_an_unsplit_dataset_stay_with_their_original(make_dataset):
    root = make_dataset({"red": 20, "green": 20})
    for k in range(6):  # six photos saved twice, under another name
        original = root / "red" / f"red_{k:02d}.png"
        (root / "red" / f"copy of red_{k:02d}.png").write_bytes(original.read_bytes())
    report = scan_dataset(root)
    assert any(w.startswith("6 image(s) are exact copies") for w in report.warnings)
    for seed in range(5):
        plan = make_splits(report, 0.2, 0.2, seed)
        split_of = {
            item.path: name
            for name, part in (("train", plan.train), ("val", plan.val), ("test", plan.test))
            for item in part
        }
        assert len(split_of) == 46
        for k in range(6):
            assert (
                split_of[str(root / "red" / f"copy of red_{k:02d}.png")]
                == split_of[str(root / "red" / f"red_{k:02d}.png")]
            )


def test_a_wrapper_folder_from_a_zip_is_looked_through(make_dataset, tmp_path):
    make_dataset({"red": 2, "green": 2}, root=tmp_path / "outer" / "my photos")
    assert scan_dataset(tmp_path / "outer").class_names == ["green", "red"]


def test_not_a_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        scan_dataset(tmp_path / "missing")


# --- zips -------------------------------------------------------------------------------


def _zip(path, entries, password_flag=False):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    if password_flag:
        # Python cannot write encrypted zips: set the "encrypted" bit in both headers by hand.
        data = bytearray(path.read_bytes())
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            position = data.find(signature)
            data[position + offset] |= 0x1
        path.write_bytes(bytes(data))
    return path


def test_zip_of_class_folders_is_extracted_and_scanned(make_dataset, tmp_path):
    source = make_dataset({"red": 3, "green": 3})
    entries = {f"photos/{p.parent.name}/{p.name}": p.read_bytes() for p in source.rglob("*.png")}
    entries["__MACOSX/photos/._x"] = b"junk"
    archive = _zip(tmp_path / "photos.zip", entries)
    folder = resolve_source(str(archive))
    assert scan_dataset(folder).class_totals() == {"green": 3, "red": 3}
    assert resolve_source(str(archive)) == folder  # extracted once, reused


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_zip_paths_that_escape_are_refused(tmp_path, name):
    archive = _zip(tmp_path / "evil.zip", {"ok/a.png": b"x", name: b"x"})
    target = tmp_path / "out"
    with pytest.raises(DatasetError, match="unsafe path"):
        extract_zip(archive, target)
    assert not (tmp_path / "evil.png").exists()


def test_zip_symlinks_are_never_created(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("photos/red/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
        zf.writestr("photos/red/real.txt", "x")
    out = extract_zip(archive, tmp_path / "out")
    assert not (out / "photos" / "red" / "link.png").exists()
    assert (out / "photos" / "red" / "real.txt").exists()


def test_zip_bomb_is_refused_before_writing(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"red/zeros.png": b"\0" * (60 * 1024 * 1024)})
    with pytest.raises(DatasetError, match="zip bomb"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_password_protected_and_fake_zips(tmp_path):
    with pytest.raises(DatasetError, match="password"):
        extract_zip(_zip(tmp_path / "locked.zip", {"a/b.png": b"x"}, password_flag=True), tmp_path / "o1")
    fake = tmp_path / "fake.zip"
    fake.write_text("this is not a zip")
    with pytest.raises(DatasetError, match="not a zip file"):
        resolve_source(str(fake))


def test_a_zip_inside_a_zip_is_left_out_as_a_non_image(make_dataset, tmp_path):
    source = make_dataset({"red": 2, "green": 2})
    entries = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in source.rglob("*.png")}
    entries["red/inner.zip"] = _zip(tmp_path / "inner.zip", {"x.png": b"x"}).read_bytes()
    report = scan_dataset(resolve_source(str(_zip(tmp_path / "outer.zip", entries))))
    assert report.class_totals() == {"green": 2, "red": 2}
    assert [s.reason for s in report.skipped] == ["not an image (.zip file)"]


def test_a_file_that_is_not_a_zip_or_folder(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a folder or a .zip"):
        resolve_source(str(path))


# --- demo -------------------------------------------------------------------------------


def test_demo_dataset_is_deterministic_and_has_several_classes(tmp_path):
    first = ensure_demo_dataset(tmp_path / "a", per_class=5)
    second = ensure_demo_dataset(tmp_path / "b", per_class=5)
    report = scan_dataset(first)
    assert report.class_names == sorted(DEMO_CLASSES) and len(DEMO_CLASSES) >= 3
    assert report.class_totals() == {name: 5 for name in DEMO_CLASSES}
    for path in sorted(first.rglob("*.png")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()


def test_demo_source_needs_no_network(monkeypatch):
    folder = resolve_source("demo")
    assert len(scan_dataset(folder, decode=False).items) > 100


def test_sample_download_failure_says_what_to_do(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DatasetError, match="offline.*upload it as a .zip"):
        resolve_source("sample:flowers")
    with pytest.raises(DatasetError, match="Unknown sample"):
        resolve_source("sample:nope")


def test_zip_entries_with_overlong_or_non_ascii_names_are_kept(make_dataset, tmp_path):
    source = make_dataset({"red": 2, "green": 2})
    files = sorted(source.rglob("*.png"))
    entries = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in files}
    entries["red/" + "ü" * 150 + ".png"] = files[-1].read_bytes()  # 300 bytes: over most file systems' limit
    entries["green/фото кошки 猫.png"] = files[0].read_bytes()
    folder = resolve_source(str(_zip(tmp_path / "names.zip", entries)))
    assert scan_dataset(folder).class_totals() == {"green": 3, "red": 3}


def test_links_that_lead_out_of_the_dataset_are_left_out(make_dataset, tmp_path):
    root = make_dataset({"red": 3, "green": 3})
    secret = make_dataset({"blue": 1}, root=tmp_path / "private")
    (root / "red" / "innocent.png").symlink_to(next(secret.rglob("*.png")))
    (root / "green" / "folder").symlink_to(secret / "blue")
    report = scan_dataset(root)
    assert report.class_totals() == {"green": 3, "red": 3}
    assert {entry.reason for entry in report.skipped} == {"a link to somewhere outside the dataset"}


def test_a_server_folder_is_found_by_name_and_a_link_out_of_the_data_folder_is_refused(tmp_path, monkeypatch):
    """The Data page's "Folder on this server": folders of STUDIO_DATA_ROOT only, links that leave it refused."""
    import pytest

    from core.data.datasets import DatasetError
    from core.data.sources import server_folder, server_folders

    root, outside = tmp_path / "datasets", tmp_path / "secrets"
    (root / "flowers").mkdir(parents=True)
    (root / ".hidden").mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(root))

    assert server_folders() == ["escape", "flowers"]
    assert server_folder("flowers") == (root / "flowers").resolve()
    for hostile in ("escape", "../secrets", "flowers/../../secrets", "/etc"):
        with pytest.raises(DatasetError, match="outside the data folder"):
            server_folder(hostile)
