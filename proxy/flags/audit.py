"""Audit entries: one record per flag change, appended to the `{prefix}:flags:audit`
stream in the same atomic step as the change itself.

Layer: pure core. The stream is capped (`XADD MAXLEN ~ 10000`), so it is a recent
history for operators, not an archive; ship it elsewhere if you need years.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

AUDIT_MAXLEN = 10_000


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    version: int
    previous_version: int | None
    actor: str
    reason: str
    at: str
    changes: Mapping[str, Any]

    def fields(self) -> dict[str, str]:
        """The stream entry's fields (Redis streams hold flat string maps)."""
        return {
            "version": str(self.version),
            "previous_version": "" if self.previous_version is None
            else str(self.previous_version),
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "changes": orjson.dumps(self.changes).decode(),
        }

    def summary(self) -> str:
        """One line for `llm-shadow audit`: the reason and the changes as JSON, so quotes
        and non-ASCII text read the same as in the snapshot."""
        changes = orjson.dumps(self.changes).decode()
        reason = f"  reason: {orjson.dumps(self.reason).decode()}" if self.reason else ""
        return f"{self.at}  v{self.version}  {self.actor}{reason}  changes: {changes}"


def parse_entry(entry_id: str, fields: Mapping[str, str]) -> AuditEntry:
    """Read a stream entry back; tolerant, because old entries outlive code changes."""
    try:
        changes = orjson.loads(fields.get("changes", "{}"))
    except orjson.JSONDecodeError:
        changes = {"unreadable": fields.get("changes", "")}
    previous = fields.get("previous_version", "")
    return AuditEntry(
        entry_id=entry_id,
        version=_int(fields.get("version"), 0),
        previous_version=_int(previous, None) if previous else None,
        actor=fields.get("actor", ""),
        reason=fields.get("reason", ""),
        at=fields.get("at", ""),
        changes=changes if isinstance(changes, dict) else {"value": changes},
    )


def _int(value: str | None, default: int | None) -> Any:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
