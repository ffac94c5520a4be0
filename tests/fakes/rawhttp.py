"""Raw HTTP/1.1 over a socket, for tests that must send bytes no HTTP client would (request
smuggling, absolute-form targets, dot segments) and see exactly what comes back."""

from __future__ import annotations

import socket
import threading
import time


def exchange(port: int, payload: bytes, timeout: float = 10.0, host: str = "127.0.0.1") -> bytes:
    """Send `payload`, then read until the server closes or `timeout` passes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        return read_until_close(sock, timeout)


def read_until_close(sock: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    chunks = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def request(method: str, target: str, headers: dict[str, str] | None = None,
            body: bytes = b"", host: str = "localhost") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Canary:
    """A TCP listener that only counts connections: proof that nothing was sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=5)
        self.sock.close()
