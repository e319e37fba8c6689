"""Run names, class folders and notes made safe where they land: the model card, the pages, a shared run."""

import pytest
from markdown_it import MarkdownIt

from core.base.markup import md_literal, md_notes
from core.runs.directory import runs_root
from tests.conftest import recorded_run

PAYLOAD = (
    "<script>alert(1)</script><img src=x onerror=alert(2)> **bold** [link](javascript:alert(3)) ![t](http://host/t.png)"
)


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)  # raw HTML allowed, as GitHub and most viewers do


def test_a_name_is_shown_exactly_as_typed_and_nothing_in_it_runs():
    rendered = _html(md_literal(PAYLOAD))
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert _html(md_literal("a\n# heading\n```")).count("<p>") == 1  # one line: no heading, no fence


def test_notes_keep_their_formatting_but_load_no_image_and_run_no_html():
    rendered = _html(md_notes("**Board** demo: see [the plan](https://example.org).\n\n" + PAYLOAD))
    assert "<strong>Board</strong>" in rendered and '<a href="https://example.org">' in rendered
    assert "<img" not in rendered and "<script" not in rendered
    assert _html(md_notes("![t][ref]\n\n[ref]: http://host/t.png")).count("<img") == 0  # reference images too


def test_the_model_card_of_a_run_with_a_hostile_name_and_classes_is_inert(make_dataset):
    from core.results.export_base import Verification
    from core.results.formats import FORMATS
    from core.results.model_card import model_card

    run = recorded_run(runs_root(), "hostile", make_dataset({"red": 4, "green": 4}))
    run.set_about(name=PAYLOAD)
    fmt = FORMATS["onnx"]
    verification = Verification("onnx", "ONNX", "onnxruntime", True, 1.0, 0.5, 0.5, 4, 1000, 1.0, {}, "")
    card = model_card(run, fmt, verification, ["<img src=x onerror=alert(4)>", "green"], 32)
    rendered = _html(card)
    assert "<script" not in rendered and "<img" not in rendered
    assert "&lt;script&gt;" in rendered  # the name is there, as text


@pytest.mark.parametrize("page_name", ["presentation", "evaluate"])
def test_a_note_with_a_remote_image_is_shown_as_text(make_dataset, page_name):
    from core.sharing import links as sharing
    from tests.test_pages import _app, page

    run = recorded_run(runs_root(), "noted", make_dataset({"red": 4, "green": 4}))
    run.set_about(notes="Results ![t](http://host/track.png) <img src=http://host/t2.png>")
    at = _app(share=sharing.make_link(run.id)).run() if page_name == "presentation" else page("evaluate").run()
    assert not at.exception
    shown = [m.value for m in [*at.markdown, *at.caption] if "Results" in m.value]
    assert shown and "http://host/track.png" in shown[0]
    assert all("<img" not in _html(text) for text in shown)


def test_the_report_of_a_run_with_a_hostile_name_notes_and_classes_is_inert(make_dataset, tmp_path):
    from core.results.report import build_report

    photos = make_dataset({"red": 4, "green": 4})
    (photos / "red").rename(photos / "<img src=x onerror=alert(5)>")
    run = recorded_run(runs_root(), "hostile-report", photos)
    run.set_about(name=PAYLOAD, notes=PAYLOAD)
    report = build_report(run)
    assert "<script>alert(1)" not in report and "<img src=x onerror" not in report
    assert "http://host/t.png" not in report.replace("![t](http://host/t.png)", "")  # the note's text, never an <img>
