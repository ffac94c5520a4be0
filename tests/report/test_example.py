"""Kept divergent pairs (pure): what a side looks like, credentials redacted with the
telemetry's rule, every size bounded, and the stored form read back."""

from __future__ import annotations

import orjson
import pytest

from proxy.comparison import Answer, ToolCall
from proxy.comparison.answer import tool_call
from proxy.report.example import (
    CUT_MARK,
    MAX_EXAMPLE_BYTES,
    MAX_SIDE_BYTES,
    Example,
    Side,
    build,
    cut_utf8,
    decode,
    redact_evidence,
    render,
)

SECRET = "sk-live-SENTINEL-0123456789"


def text(value: str, **options: object) -> Answer:
    return Answer("openai_chat", text=value, **options)  # type: ignore[arg-type]


def pair(legacy: Answer, orchestrator: Answer, **options: object) -> Example:
    defaults: dict[str, object] = {"route": "/openai", "request_id": "r1", "at": 100.0,
                                   "label": "major", "reason": "fact_changed", "score": 1.0}
    return build(legacy=legacy, orchestrator=orchestrator, **{**defaults, **options})  # type: ignore[arg-type]


def test_a_text_answer_is_kept_as_written_with_its_finish_reason() -> None:
    example = pair(text("The capital of France is Paris.", finish_reason="stop"),
                   text("The capital of France is Lyon.", finish_reason="length"),
                   evidence=("Paris → Lyon",), trace_id="ab" * 16, models=("qwen-max",))
    assert example.legacy == Side("The capital of France is Paris.", "stop", False)
    assert example.orchestrator.finish == "length"
    assert example.evidence == ("Paris → Lyon",)
    assert decode(example.encode()) == example


def test_json_answers_are_indented_with_sorted_keys_so_the_sides_line_up() -> None:
    legacy = Answer("openai_chat", text='{"price": 2.49, "gpu": "H100"}', is_json=True,
                    content_json={"price": 2.49, "gpu": "H100"})
    assert render(legacy) == '{\n  "gpu": "H100",\n  "price": 2.49\n}'


def test_tool_calls_and_errors_are_readable() -> None:
    call = tool_call("get_weather", '{"unit": "celsius", "city": "Paris"}')
    assert render(Answer("openai_chat", tool_calls=(call,))) == \
        '→ get_weather {"city":"Paris","unit":"celsius"}'
    broken = ToolCall("lookup", "{not json")
    assert render(Answer("openai_chat", tool_calls=(broken,))) == "→ lookup {not json"
    assert render(Answer("openai_chat", error="rate_limit_exceeded")) == \
        "[error] rate_limit_exceeded"


@pytest.mark.parametrize("answer", [
    text(f"Call it with api_key={SECRET} please."),
    text(f"Authorization: Bearer {SECRET}"),
    text(f"Fetch https://user:{SECRET}@example.com/x and https://h/y?token={SECRET}&q=1"),
    text(f'{{"name": "svc", "password": "{SECRET}"}} is not JSON enough to parse: oops'),
    Answer("openai_chat", text="{}", is_json=True,
           content_json={"service": {"api_key": SECRET, "region": "eu"}}),
    Answer("openai_chat", tool_calls=(tool_call("connect", {"host": "db", "secret": SECRET}),)),
], ids=["assignment", "bearer", "urls", "json-in-text", "json", "tool-call"])
def test_credentials_are_redacted_on_both_sides(answer: Answer) -> None:
    example = pair(answer, answer)
    stored = example.encode().decode()
    assert SECRET not in stored
    assert "REDACTED" in stored


def test_evidence_about_a_credential_path_shows_neither_value() -> None:
    assert redact_evidence(f'$.auth.api_key: "{SECRET}" → "sk-other"') == \
        "$.auth.api_key: REDACTED → REDACTED"
    assert redact_evidence('connect $.secret: "a" → "b"') == "connect $.secret: REDACTED → REDACTED"
    assert redact_evidence('$.price: 2.49 → 3.99') == '$.price: 2.49 → 3.99'
    assert redact_evidence("Paris → Lyon") == "Paris → Lyon"


def test_a_long_side_is_cut_at_a_character_boundary_and_marked() -> None:
    long = "é" * (MAX_SIDE_BYTES)  # two bytes each
    example = pair(text(long), text("short"))
    assert example.legacy.cut and not example.orchestrator.cut
    assert len(example.legacy.text.encode()) <= MAX_SIDE_BYTES
    assert example.legacy.text.endswith(CUT_MARK)


def test_an_example_never_encodes_over_its_bound() -> None:
    # Quotes and control characters grow when escaped as JSON.
    nasty = ('"\\\x01' * 4000)
    example = pair(text(nasty), text(nasty[::-1]), evidence=tuple("x" * 120 for _ in range(5)))
    data = example.encode()
    assert len(data) <= MAX_EXAMPLE_BYTES
    back = decode(data)
    assert back is not None and back.legacy.cut and back.request_id == "r1"


def test_a_truncated_answer_is_marked_cut() -> None:
    assert pair(text("The cap", truncated=True), text("x")).legacy.cut


@pytest.mark.parametrize("raw", [b"", b"not json", b"{}", orjson.dumps({"route": "/x"}),
                                 orjson.dumps([1, 2])])
def test_unreadable_stored_examples_are_skipped(raw: bytes) -> None:
    assert decode(raw) is None


@pytest.mark.parametrize(("value", "limit", "expected"), [
    ("abc", 10, ("abc", False)), ("", 0, ("", False)),
    ("abcdefghijklmnopqrstuvwxyz", 12, ("abc" + CUT_MARK, True)),  # the mark is 9 bytes
])
def test_cut_utf8(value: str, limit: int, expected: tuple[str, bool]) -> None:
    assert cut_utf8(value, limit) == expected


def test_a_credential_quoted_in_the_evidence_without_its_name_is_blanked() -> None:
    # The comparison quotes the changed token alone: `Paris → sk-...`.
    example = pair(text("The capital is Paris."),
                   text(f"The capital is Lyon. Use api_key={SECRET} to check."),
                   evidence=(f"Paris → {SECRET}", "added: Lyon",
                             "x" * 100 + " → " + SECRET[:12] + "…"))
    assert example.evidence[:2] == ("Paris → REDACTED", "added: Lyon")
    assert example.evidence[2].endswith("→ REDACTED…")
    assert SECRET[:8] not in example.encode().decode()
