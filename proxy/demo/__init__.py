"""`llm-shadow demo`: the main job on an embedded default, in one process on loopback.

Layer: composition, with its own small pure core (`atlas`) and adapters (`upstreams`,
`servers`, `client`, `storage`, `traces`). Nothing here is imported by the proxy itself;
tests/ is not imported either (it is not installed).

    facts       the fact table and how each fake words its answers (pure)
    upstreams   the fake legacy API and orchestrator models (ASGI), the regression switch
    servers     uvicorn on sockets bound before start, in this event loop
    settings    the demo's config.json and policies, written and loaded like any other
    storage     Redis if it answers (unique key prefix), else the in-process store
    traces      the user's OTEL_* settings, else spans to a file; a span counter
    world       everything above plus the real Runtime and listeners, up and down
    client      the legacy service: AsyncOpenAI at a steady rate, a realistic mix
    watch       progress lines, ramp events, the flags as this replica applies them
    story       the script: ramp, promotions, regression, rollback, verification
    results     what happened, the comparison report, where the traces went
    run         one run, start to finish (called by `proxy.cli.demo`)
"""
