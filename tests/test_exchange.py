"""What one request's record gives the recorder: the legacy answer as the client got it,
only when there is one, and complete only when it was; and the captured answer's
header lookup and duration."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.exchange import Captured, Exchange
from tests.fakes.records import exchange

HEADERS = [(b"Content-Type", b"application/json"), (b"x-a", b"1"), (b"X-A", b"2")]


def answered(**fields: Any) -> Exchange:
    """A legacy answer that went out whole; `fields` change what happened."""
    record = exchange()
    record.status = 200
    record.response_headers = HEADERS
    record.response_body = b'{"ok": true}'
    record.first_byte_at = record.started_at + 0.1
    record.finished_at = record.started_at + 0.5
    record.completed = True
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_a_whole_legacy_answer() -> None:
    record = answered(response_truncated=True)
    captured = record.legacy_answer()
    assert captured == Captured(200, HEADERS, b'{"ok": true}', True, record.started_at,
                                record.started_at + 0.1, record.started_at + 0.5,
                                completed=True)


@pytest.mark.parametrize("fields", [
    {"status": None},  # refused or failed before any status
    {"response_body": None},  # not teed: the endpoint is not one the proxy reads
    {"answered_by": "orchestrator"},  # a divert the orchestrator answered
], ids=["no status", "no body", "orchestrator answered"])
def test_no_legacy_answer(fields: dict[str, Any]) -> None:
    assert answered(**fields).legacy_answer() is None


@pytest.mark.parametrize(("fields", "completed"), [
    ({}, True),
    ({"aborted": True}, False),  # the upstream broke off mid-stream
    ({"completed": False}, False),  # the client went away first
    ({"aborted": True, "completed": False}, False),
])
def test_completed_only_when_it_was(fields: dict[str, Any], completed: bool) -> None:
    captured = answered(**fields).legacy_answer()
    assert captured is not None
    assert captured.completed is completed


def test_an_empty_body_is_still_an_answer() -> None:
    captured = answered(response_body=b"").legacy_answer()
    assert captured is not None and captured.body == b""


def test_an_unfinished_record_ends_where_it_started() -> None:
    record = answered(finished_at=None)
    captured = record.legacy_answer()
    assert captured is not None
    assert captured.finished == record.started_at
    assert captured.duration == 0.0


def test_a_fallback_answered_by_legacy_is_a_legacy_answer() -> None:
    assert answered(fallback_reason="timeout").legacy_answer() is not None


def test_header_lookup_is_case_insensitive_on_the_stored_name() -> None:
    captured = Captured(200, HEADERS, b"", False, 0.0, None, 1.0)
    assert captured.header(b"content-type") == "application/json"
    assert captured.header(b"x-a") == "1"  # the first of repeated headers
    assert captured.header(b"x-missing") is None


def test_header_values_are_latin_1() -> None:
    captured = Captured(200, [(b"x-name", "café".encode("latin-1"))], b"", False, 0.0, None,
                        1.0)
    assert captured.header(b"x-name") == "café"


def test_duration() -> None:
    assert Captured(200, [], b"", False, 2.0, 2.5, 3.25).duration == 1.25
