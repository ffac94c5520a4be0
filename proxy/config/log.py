"""The `log` section: how verbose `llm-shadow serve` is, and in which format it logs.

Layer: pure core. `format: "json"` writes one JSON object per line (time, level, logger,
message, and the traceback when there is one), which log collectors in a cluster parse
without a regular expression; `text` is for people. Both follow the usual precedence:
default → config.json → `LLM_SHADOW_LOG_LEVEL` / `LLM_SHADOW_LOG_FORMAT` → `--log-level` /
`--log-format`. The level applies to `serve`; the one-shot commands (`status`, `set`,
`report`, ...) print their own output and log only warnings unless `--log-level` says
otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from proxy.config.base import Section

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]


class LogSection(Section):
    level: LogLevel = "info"
    format: LogFormat = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
