"""After the answer: usage, cost, spans and comparisons, off the request path."""
