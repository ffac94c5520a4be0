"""The admin port: health, readiness, live flags, metrics, orchestrator feedback."""
