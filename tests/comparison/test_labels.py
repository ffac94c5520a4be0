"""Divergence labels on crafted pairs, in each wire format, under the shipped policy."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from proxy.apis import Api
from proxy.comparison import Comparison, compare, extract_answer, load_policy
from tests.comparison import pairs

POLICY = load_policy(Path(__file__).resolve().parents[2] / "policies" / "divergence.json")

JSON_A = '{"city": "Paris", "population": 2102650, "tags": ["capital", "seine"]}'
JSON_A_REORDERED = '{"tags": ["capital", "seine"], "population": 2102650, "city": "Paris"}'
JSON_A_CHANGED = '{"city": "Paris", "population": 2100000, "tags": ["capital", "seine"]}'
JSON_B = '{"answer": 41}'


def run(api: Api, legacy: bytes, candidate: bytes, route: str = "/openai") -> Comparison:
    return compare(extract_answer(api, legacy), extract_answer(api, candidate),
                   POLICY.for_route(route))


# (name, api, legacy, candidate, allowed labels)
CASES = [
    ("identical", "openai_chat", pairs.chat("Paris."), pairs.chat("Paris."), {"identical"}),
    ("different ids only", "openai_chat",
     pairs.chat("Paris.", ident="chatcmpl-1", created=100, fingerprint="fp_1"),
     pairs.chat("Paris.", ident="chatcmpl-2", created=200, fingerprint="fp_2",
                model="qwen-max"), {"identical"}),
    ("reordered JSON keys", "openai_chat", pairs.chat(JSON_A), pairs.chat(JSON_A_REORDERED),
     {"identical"}),
    ("JSON in a code fence", "openai_chat", pairs.chat(JSON_A),
     pairs.chat("```json\n" + JSON_A_REORDERED + "\n```"), {"identical"}),
    # A changed JSON value is a changed answer however many fields stayed the same.
    ("changed value", "openai_chat", pairs.chat(JSON_A), pairs.chat(JSON_A_CHANGED),
     {"major"}),
    ("changed only value", "openai_chat", pairs.chat('{"answer": 42}'), pairs.chat(JSON_B),
     {"major"}),
    ("different tool call", "openai_chat",
     pairs.chat(None, tools=[("get_weather", {"city": "Paris"})], finish="tool_calls"),
     pairs.chat(None, tools=[("search_web", {"query": "Paris weather"})],
                finish="tool_calls"), {"major"}),
    ("same tool call, reordered arguments", "openai_chat",
     pairs.chat(None, tools=[("get_weather", '{"city": "Paris", "unit": "c"}')],
                finish="tool_calls"),
     pairs.chat(None, tools=[("get_weather", '{"unit":"c","city":"Paris"}')],
                finish="tool_calls", ident="x"), {"identical"}),
    ("parallel tool calls in another order", "openai_chat",
     pairs.chat(None, tools=[("a", {"x": 1}), ("b", {"y": 2})], finish="tool_calls"),
     pairs.chat(None, tools=[("b", {"y": 2}), ("a", {"x": 1})], finish="tool_calls"),
     {"identical"}),
    ("tool call with one argument changed", "openai_chat",
     pairs.chat(None, tools=[("get_weather", {"city": "Paris", "unit": "c"})],
                finish="tool_calls"),
     pairs.chat(None, tools=[("get_weather", {"city": "Paris", "unit": "f"})],
                finish="tool_calls"), {"major"}),
    ("paraphrase, reordered", "openai_chat", pairs.chat("The capital of France is Paris."),
     pairs.chat("Paris is the capital of France."), {"equivalent"}),
    ("paraphrase", "openai_chat",
     pairs.chat("To reset your password, open Settings and click 'Forgot password'."),
     pairs.chat("You can reset the password from the Settings page by choosing "
                "'Forgot password'."), {"minor"}),
    ("whitespace and case only", "openai_chat", pairs.chat("Paris is the capital."),
     pairs.chat("  paris   is the capital.\n"), {"equivalent"}),
    ("unrelated answer", "openai_chat",
     pairs.chat("Use git rebase -i to squash the last three commits."),
     pairs.chat("Bananas are rich in potassium and easy to digest."), {"major"}),
    # Stopping and running out of tokens are different finish classes.
    ("answer cut by length", "openai_chat", pairs.chat("Paris is the capital of France."),
     pairs.chat("Paris is the capital of France.", finish="length"), {"major"}),
    ("anthropic identical, different ids", "anthropic_messages",
     pairs.anthropic("Bonjour", ident="msg_1"), pairs.anthropic("Bonjour", ident="msg_2"),
     {"identical"}),
    ("anthropic different tool", "anthropic_messages",
     pairs.anthropic(tools=[("lookup", {"q": "x"})], stop="tool_use"),
     pairs.anthropic(tools=[("calculator", {"q": "x"})], stop="tool_use"), {"major"}),
    ("responses reordered JSON", "openai_responses", pairs.responses(JSON_A, ident="r1"),
     pairs.responses(JSON_A_REORDERED, ident="r2", created=9), {"identical"}),
    ("responses changed call", "openai_responses",
     pairs.responses(calls=[("f", {"a": 1})]), pairs.responses(calls=[("g", {"a": 1})]),
     {"major"}),
]


@pytest.mark.parametrize(("name", "api", "legacy", "candidate", "labels"), CASES,
                         ids=[case[0] for case in CASES])
def test_crafted_pairs(name: str, api: Api, legacy: bytes, candidate: bytes,
                       labels: set[str]) -> None:
    result = run(api, legacy, candidate)
    assert result.label in labels, (result.label, result.score, dict(result.parts))
    assert 0.0 <= result.score <= 1.0
    assert result.label != "identical" or result.score == 0.0
    # The comparison is symmetric in its label.
    assert run(api, candidate, legacy).label == result.label


def test_streamed_and_complete_answers_compare_as_the_same() -> None:
    body = pairs.chat("Hello world")
    stream = pairs.chat_stream(["Hel", "lo ", "world"])
    assert run("openai_chat", body, stream).label == "identical"


def test_streamed_tool_call_fragments_are_joined() -> None:
    body = pairs.chat(None, tools=[("f", {"city": "Paris"})], finish="tool_calls")
    stream = pairs.chat_stream([], tool=("f", ['{"ci', 'ty": "Pa', 'ris"}']),
                               finish="tool_calls")
    assert run("openai_chat", body, stream).label == "identical"


def test_truncated_stream_is_flagged() -> None:
    result = run("openai_chat", pairs.chat("Hello world"),
                 pairs.chat_stream(["Hello"], done=False))
    assert result.truncated
    assert result.label in ("minor", "major")


def test_error_answer_is_major() -> None:
    error = orjson.dumps({"error": {"type": "server_error", "message": "x"}})
    assert run("openai_chat", pairs.chat("Paris"), error).label == "major"
    assert run("openai_chat", error, error).label == "identical"


def test_embeddings_by_cosine() -> None:
    def body(vectors: list[list[float]]) -> bytes:
        return orjson.dumps({"object": "list", "model": "e", "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]})

    same = run("openai_embeddings", body([[1.0, 0.0]]), body([[2.0, 0.0]]))
    close = run("openai_embeddings", body([[1.0, 0.0]]), body([[1.0, 0.1]]))
    orthogonal = run("openai_embeddings", body([[1.0, 0.0]]), body([[0.0, 1.0]]))
    assert same.label == "equivalent" and same.score == 0.0
    assert close.label == "equivalent"
    assert orthogonal.label == "major"


def test_envelope_difference_is_at_most_equivalent_by_default() -> None:
    legacy = orjson.loads(pairs.chat("Paris"))
    candidate = orjson.loads(pairs.chat("Paris"))
    candidate["choices"][0]["message"]["annotations"] = [{"type": "url_citation"}]
    result = run("openai_chat", orjson.dumps(legacy), orjson.dumps(candidate))
    assert result.label == "equivalent"
    assert result.parts["envelope"] > 0
    assert any("annotations" in reason for reason in result.reasons)


def test_anthropic_route_ignores_the_envelope() -> None:
    legacy = orjson.loads(pairs.anthropic("Hi"))
    candidate = {**legacy, "container": {"id": "x"}}
    result = run("anthropic_messages", orjson.dumps(legacy), orjson.dumps(candidate),
                 route="/anthropic")
    assert result.score == 0.0


def test_unknown_wire_format_diffs_whole_bodies() -> None:
    a = orjson.dumps({"id": "1", "results": [{"flagged": False}]})
    b = orjson.dumps({"id": "2", "results": [{"flagged": False}]})
    c = orjson.dumps({"id": "3", "results": [{"flagged": True}]})
    assert compare(extract_answer(None, a), extract_answer(None, b)).label == "identical"
    assert compare(extract_answer(None, a), extract_answer(None, c)).label == "major"


def test_comparison_as_dict_is_json_ready() -> None:
    result = run("openai_chat", pairs.chat("a"), pairs.chat("b"))
    assert orjson.loads(orjson.dumps(result.as_dict()))["label"] == result.label
