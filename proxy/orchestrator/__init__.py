"""The orchestrator: answers a request with several models, selected by what was
learned about them, merged by confidence, validated, within a cost limit.

Modules, by layer (imports only go down this list):

    pure core
      registry.py        AIModel and the model registry (config `models`)
      classification.py  TaskType and the documented request classification
      conversation.py    a client request (OpenAI chat / Anthropic messages) in neutral form
      content.py         an answer in neutral form: text, tool calls, JSON, usage
      wire.py            request bodies for, and replies from, the two model APIs
      cost.py            estimates before calling, actual cost, the per-request budget
      learned.py         learned records per model and task type; Beta posteriors
      selection.py       Thompson sampling over the records, cold start, budget fit
      merge.py           grouping equivalent answers; confidence-weighted vote
      validation.py      rules from policies/validation.json
      performance.py     performance report and anomaly detection
      request.py, result.py, render.py   the pipeline's seams and the wire rendering
    core (asyncio)
      fanout.py          concurrent calls with deadlines, early stop, cancellation
      engine.py          one request's orchestration, step by step
      learning.py        the in-process view of the records, synced with the store
    adapters
      learned_store.py   learned records in Redis (or memory)
      callers.py         HTTP model callers over proxy.transport
      target.py          the orchestrator as shadow and divert call it: this pipeline
                         in process, or an external orchestrator endpoint
    composition
      pipeline.py        build_pipeline(settings, redis): what the proxy calls
      api.py             the guide's AIOrchestrator, OrchestratorConfig, Response
      adapter.py         the guide's MigrationAdapter

The admin routes (`POST /feedback`, `GET /report`) are in `proxy.admin`. This file
imports nothing: import from the modules.
"""
