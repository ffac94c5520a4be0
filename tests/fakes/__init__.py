"""Real servers for tests: a fake OpenAI/Anthropic-compatible upstream, a TCP fault proxy,
and helpers to run ASGI apps under uvicorn on loopback sockets."""
