"""Token usage and cost of model calls: SSE parsing, usage meters, the price table."""
