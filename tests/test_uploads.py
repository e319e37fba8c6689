"""Photos given to a model to try: checked before they are kept, counted per link, gone once answered."""

import io
import os
import tracemalloc
from pathlib import Path

from PIL import Image

from core.data.uploads import (
    TRY_MAX_BYTES,
    UploadQuota,
    forget_tried_photos,
    keep_tried_photos,
    tried_photos_home,
)


def _png(colour=(200, 30, 30), size=48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _files_under(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_photo_is_kept_while_answered_and_refused_files_are_never_written():
    photos = keep_tried_photos(
        [
            ("red.png", _png()),
            ("big.jpg", os.urandom(TRY_MAX_BYTES + 1)),
            ("random.jpg", os.urandom(4096)),
            ("../../../etc/evil.png", _png((0, 0, 200))),
        ],
        space="tab-1",
    )
    assert [p.refusal is None for p in photos] == [True, False, False, True]
    assert "larger than 20 MB" in photos[1].refusal and "not a photo" in photos[2].refusal
    assert photos[3].name == "evil.png" and tried_photos_home() in Path(photos[3].path).parents
    assert sorted(p.name for p in _files_under(tried_photos_home())) == sorted(
        os.path.basename(p.path) for p in photos if p.path
    )
    forget_tried_photos(photos)
    assert _files_under(tried_photos_home()) == []


def test_a_decompression_bomb_photo_is_refused_before_it_is_decoded():
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")  # 400 megapixels in a few kilobytes
    (photo,) = keep_tried_photos([("bomb.png", buffer.getvalue())], space="tab")
    assert photo.path is None and "too large to decode" in photo.refusal


def test_a_flood_through_a_read_only_link_leaves_disk_and_memory_flat():
    """The attack from the issue: a read-only visitor sends pick after pick; the hour's allowance stops it, nothing
    stays on disk, and memory does not grow with what was sent."""
    quota = UploadQuota(photos=100, size=300 * 2**20)
    junk, photo = os.urandom(2**20), _png()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    answered = refused_by_quota = 0
    for pick in range(60):  # 60 picks of 12: 720 files, 708 MB of junk
        files = [(f"big-{pick}-{k}.jpg", junk) for k in range(11)] + [(f"ok-{pick}.png", photo)]
        photos = keep_tried_photos(files, space=f"tab-{pick % 3}", quota_key="link:abc", quota=quota)
        answered += sum(p.path is not None for p in photos)
        refused_by_quota += sum("as many photos as it may" in (p.refusal or "") for p in photos)
        forget_tried_photos(photos)
        assert _files_under(tried_photos_home()) == []  # nothing kept between picks
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    assert answered <= 100 // 12 + 1 and refused_by_quota >= 720 - 100
    assert grown < 4 * 2**20
    other = keep_tried_photos([("ok.png", photo)], space="tab", quota_key="link:other", quota=quota)
    assert other[0].path is not None  # another link has its own allowance
    forget_tried_photos(other)


def test_tried_photos_left_behind_are_removed_after_an_hour():
    (photo,) = keep_tried_photos([("red.png", _png())], space="closed-tab")
    old = os.stat(photo.path).st_mtime - 3700
    os.utime(photo.path, (old, old))
    forget_tried_photos([])
    assert _files_under(tried_photos_home()) == []
