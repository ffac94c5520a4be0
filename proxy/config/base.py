"""The base class every configuration section derives from.

Layer: pure core. Sections are frozen (a loaded configuration never changes in place; a
reload builds a new one) and forbid unknown keys, so a typo in `config.json` is an error
that names the key instead of a setting that silently does nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
