"""Shadow: the orchestrator answers a copy of a legacy request on the side."""
