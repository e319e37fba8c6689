"""Text people typed or named (run names, notes, class folders), made safe for where it lands.

Markdown lets raw HTML and remote images through: a run named `<script>...` in a model card, or
`![x](http://tracker/)` in a note shown to every viewer of a read-only link. Names are written
as literal text; notes keep their formatting but show no HTML and load no image.
"""

from __future__ import annotations

import re

_MARKS = re.compile(r"([\\`*_\[\]<>!&#~|$])")  # emphasis, code, links, images, HTML, headings, tables, maths
_LIST = re.compile(r"^([-+])|^(\d+)([.)])")  # a name starting like a list item


def md_literal(text: str) -> str:
    """`text` as Markdown that shows exactly these characters, on one line (what would format is escaped)."""
    line = _MARKS.sub(r"\\\1", " ".join(str(text).split()))
    return _LIST.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", line)


def md_notes(text: str) -> str:
    """A note's Markdown with its formatting kept, but no raw HTML and no image (local or remote)."""
    text = re.sub(r"([\\<>])", r"\\\1", str(text))  # no tags, no <autolinks>, no escape undone
    return text.replace("![", "!\\[")  # an image is shown as its text; a link stays a link (it loads nothing)
