"""A bounded copy of a byte stream that is being forwarded.

Layer: pure core. The legacy answer is copied only when a comparison or usage record needs
it, and never beyond `limit` bytes: a tee that stopped copying says so (`truncated`) and
the forwarded stream is unaffected either way.
"""

from __future__ import annotations


class Tee:
    __slots__ = ("buffer", "limit", "truncated")

    def __init__(self, limit: int):
        self.limit = limit
        self.buffer = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        if self.truncated:
            return
        room = self.limit - len(self.buffer)
        if len(chunk) > room:
            self.buffer += chunk[:room]
            self.truncated = True
        else:
            self.buffer += chunk

    def value(self) -> bytes:
        return bytes(self.buffer)
