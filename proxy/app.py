"""`create_app`: the proxy port's ASGI app, with every layer it is made of, in order.

Layer: composition. A newcomer starts here. The proxy port does nothing but proxy: no
health or admin routes (those are on the admin port, `proxy.admin.routes`), no framework
middleware on the hot path.

    request ─► ProxyEndpoint (proxy.handler)
                 1. ingress checks: framing, methods, upgrades    proxy.ingress
                 2. route table: path prefix → fixed upstream      proxy.routing
                 3. body limit and read deadline                   proxy.body
                 4. legacy path: stream upstream bytes back        proxy.forward
                 5. record the exchange (off the request path)     Recorder
"""

from __future__ import annotations

from typing import Any

from proxy.admin.routes import create_admin_app
from proxy.runtime import Runtime


def create_app(runtime: Runtime) -> Any:
    return runtime.endpoint


__all__ = ["create_admin_app", "create_app"]
