"""The comparison report: aggregates every replica writes to Redis after each compared
request, read back as numbers (for the ramp controller) or as a text, JSON or HTML
report (`llm-shadow report`).

    entry.py            ReportEntry: what one request contributes, as counters (pure)
    example.py          a kept divergent pair: rendered, redacted, bounded (pure)
    aggregate.py        counters and summaries, merged across buckets (pure)
    lineup.py           the rows per orchestrator model (pure)
    text.py, html.py    the text/JSON and HTML renderings (pure; plotly is heavy,
                        import `html` only when it is needed)
    sidebyside.py       kept pairs as HTML, differing tokens marked (pure)
    buffer.py           the replica's write buffer: merged entries, one round trip
    aggregate_store.py  the Redis adapter: hourly and fine buckets with bounded
                        retention, and the kept pairs

This file imports nothing: import from the modules.
"""
