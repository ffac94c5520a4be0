"""The comparison report: aggregates every replica writes to Redis after each compared
request, read back as numbers (for the ramp controller) or as a text, JSON or HTML
report (`llm-shadow report`).

    entry.py            ReportEntry: what one request contributes (pure)
    aggregate.py        counters and summaries, merged across buckets (pure)
    text.py, html.py    the text/JSON and HTML renderings (pure; plotly is heavy,
                        import `html` only when it is needed)
    buffer.py           the replica's write buffer: merged entries, one round trip
    aggregate_store.py  the Redis adapter: bucketed aggregates with bounded retention

This file imports nothing: import from the modules.
"""
