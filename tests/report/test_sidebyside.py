"""Kept pairs as HTML (pure): differing tokens marked on the right side, everything from
an answer escaped, and the request id linked to its trace when a Jaeger URL is given."""

from __future__ import annotations

import urllib.parse

import orjson

from proxy.report.example import Example, Side
from proxy.report.sidebyside import highlight, render_example, render_examples, trace_link

EXAMPLE = Example("/openai", "req-1", 1_800_000_000.0, "major", "fact_changed", 1.0,
                  Side("The capital of France is Paris.", "stop"),
                  Side("The capital of France is Lyon.", "stop"),
                  evidence=("Paris → Lyon",), trace_id="0af7651916cd43dd8448eb211c80319c",
                  models=("qwen-max",), legacy_model="gpt-4o-mini")


def test_only_the_differing_tokens_are_marked() -> None:
    left, right = highlight("The capital of France is Paris.", "The capital of France is Lyon.")
    assert left == 'The capital of France is <mark class="gone">Paris</mark>.'
    assert right == 'The capital of France is <mark class="new">Lyon</mark>.'


def test_identical_texts_have_no_mark_and_whitespace_stays_outside_marks() -> None:
    assert highlight("same text", "same text") == ("same text", "same text")
    _, right = highlight("It is red.", "It is  bright red.")
    assert '<mark class="new">' in right
    assert '<mark class="new"> ' not in right and ' </mark>' not in right


def test_answer_content_is_escaped() -> None:
    left, right = highlight("<b>x</b> & y", "<script>alert(1)</script>")
    assert "<b>" not in left and "</b>" not in left and "&lt;" in left and "&amp;" in left
    assert "<script>" not in right and "&lt;" in right


def test_an_example_shows_label_reason_evidence_models_and_the_request_id() -> None:
    page = render_example(EXAMPLE)
    for expected in ('class="example major"', "fact_changed", "Paris → Lyon", "qwen-max",
                     "gpt-4o-mini", "req-1", EXAMPLE.trace_id, "finish: stop",
                     'class="new">Lyon</mark>'):
        assert expected in page, expected
    assert "<a " not in page  # no Jaeger URL: nothing to link to


def test_with_a_jaeger_url_the_request_id_links_to_its_trace() -> None:
    page = render_example(EXAMPLE, "http://localhost:16686/")
    assert f'href="http://localhost:16686/trace/{EXAMPLE.trace_id}"' in page
    assert render_examples([EXAMPLE], "http://j").count("links to its trace") == 1


def test_without_a_trace_id_the_link_searches_the_request_id_tag() -> None:
    link = trace_link("req-9", "", "http://jaeger:16686")
    assert link is not None and link.startswith("http://jaeger:16686/search?")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["service"] == ["llm-shadow"]
    assert orjson.loads(query["tags"][0]) == {"llm_shadow.request.id": "req-9"}
    assert trace_link("req-9", "abc", None) is None


def test_no_examples_no_section() -> None:
    assert render_examples([]) == ""


def test_a_missing_json_key_marks_its_whole_line() -> None:
    legacy = '{\n  "gpu": "A100",\n  "region": "eu-west",\n  "spot": true\n}'
    orchestrator = '{\n  "gpu": "A100",\n  "spot": true\n}'
    left, right = highlight(legacy, orchestrator)
    assert left == ('{\n  &quot;gpu&quot;: &quot;A100&quot;,\n  <mark class="gone">'
                    '&quot;region&quot;: &quot;eu-west&quot;,</mark>\n  &quot;spot&quot;: '
                    'true\n}')
    assert "<mark" not in right


def test_a_changed_json_value_marks_the_value_only() -> None:
    left, right = highlight('{\n  "price": 2.49\n}', '{\n  "price": 3.99\n}')
    assert '<mark class="gone">2.49</mark>' in left and '<mark class="new">3.99</mark>' in right
    assert "price" not in left.split("<mark")[1]


def test_a_changed_finish_reason_is_marked() -> None:
    cut = Example("/x", "r", 0.0, "major", "finish_changed", 1.0, Side("Once upon a time.", "stop"),
                  Side("Once upon", "length"))
    page = render_example(cut)
    assert 'finish: <mark class="gone">stop</mark>' in page
    assert 'finish: <mark class="new">length</mark>' in page
    assert 'finish: stop' in render_example(EXAMPLE)  # the same on both sides: unmarked
