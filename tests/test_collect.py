"""A dataset made in the dashboard: classes by name, photos kept once, anything else refused in words."""

import io

import pytest
from PIL import Image

from core.base.errors import InputError
from core.data.collect import add_class, add_photo, classes_of, made_folder


def _jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_classes_and_photos_are_kept_once_each_under_the_data_folder(isolated_workspace):
    folder = made_folder("My photos!")
    assert folder.name == "My-photos" and folder.is_relative_to(isolated_workspace)
    assert add_class(folder, "thumbs up") == "thumbs-up"
    add_class(folder, "wave")
    first = add_photo(folder, "wave", _jpeg((200, 0, 0)))
    again = add_photo(folder, "wave", _jpeg((200, 0, 0)))
    add_photo(folder, "wave", _jpeg((0, 0, 200)), ".JPG")
    assert first == again and classes_of(folder) == {"thumbs-up": 0, "wave": 2}


def test_what_is_not_a_photo_or_not_a_class_is_refused_in_words(isolated_workspace):
    folder = made_folder("set")
    add_class(folder, "cat")
    with pytest.raises(InputError, match="That file was not added: not an image"):
        add_photo(folder, "cat", b"%PDF-1.4 not a photo")
    with pytest.raises(InputError, match="no class called 'dog'"):
        add_photo(folder, "dog", _jpeg((1, 2, 3)))
    with pytest.raises(InputError, match="letters or digits"):
        add_class(folder, "  ")
    with pytest.raises(InputError, match="letters or digits"):
        made_folder("///")
    assert classes_of(folder) == {"cat": 0}
