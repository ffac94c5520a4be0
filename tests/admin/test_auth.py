"""The admin token check."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from proxy.admin.auth import AdminAuth


def test_no_token_configured_refuses_every_mutation() -> None:
    auth = AdminAuth(None)
    outcome = auth.check("Bearer anything")
    assert not auth.enabled
    assert (outcome.ok, outcome.status) == (False, 403)
    assert "LLM_SHADOW_ADMIN_TOKEN" in outcome.message


def test_empty_token_counts_as_none() -> None:
    assert AdminAuth(SecretStr("")).check("Bearer ").status == 403


@pytest.mark.parametrize(("header", "status"), [
    (None, 401), ("", 401), ("Bearer", 401), ("Bearer   ", 401), ("Basic s3cret", 401),
    ("Bearer wrong", 401), ("Bearer s3cre", 401), ("Bearer s3cret!", 401),
    ("Bearer s3cret", 200), ("bearer s3cret", 200), ("  Bearer s3cret  ", 200),
])
def test_bearer_token(header: str | None, status: int) -> None:
    outcome = AdminAuth(SecretStr("s3cret")).check(header)
    assert outcome.status == status and outcome.ok is (status == 200)


def test_401_carries_a_challenge_and_no_secret() -> None:
    outcome = AdminAuth(SecretStr("s3cret")).check("Bearer guess")
    assert outcome.headers == {"www-authenticate": "Bearer"}
    assert "s3cret" not in outcome.message and "guess" not in outcome.message


def test_non_ascii_presented_token_is_refused_not_crashing() -> None:
    assert AdminAuth(SecretStr("s3cret")).check("Bearer sécret").status == 401
