"""The ASGI types the proxy's plain-ASGI code is written against.

Layer: pure core. The request path is plain ASGI (no Request/Response objects on the hot
path), so these three aliases are all it needs; they are defined once, here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
