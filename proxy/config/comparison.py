"""The `comparison` section: how answers are compared, how long the comparison report
keeps its aggregates, and the optional judge (`comparison.judge`).

Layer: pure core. Whether the judge's model is one of `models` and its routes are
configured routes is checked where both are known (`proxy.config.model.Config`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from proxy.config.base import Section

# The rules' labels a judge may be asked about (an identical answer needs no judge).
JudgedLabel = Literal["equivalent", "minor", "major"]


class JudgeSection(Section):
    """The optional judge: a model from `models` that classifies the orchestrator's
    answer against legacy's (same facts, subset, superset, contradiction, irrelevant
    difference) for a sample of compared prose answers (`proxy.judge`).

    The answers and the question go to that model, so it runs only where the operator
    said so twice: `enabled` is true AND the request's route is listed in `routes`.
    Nothing is listed by default. Of the comparisons on those routes, those whose rules
    label is in `labels` and whose reason comes from the prose rules are eligible, and
    `sample_percent` of them (by a stable hash of the request id) are judged, at most
    `max_concurrency` at a time (more are dropped and counted), each within
    `timeout_seconds`, all within `budget_usd_per_hour` (shared by the replicas, like
    the shadow budget). `policy_file` holds the prompt and the class definitions.
    """

    enabled: bool = False
    model: str | None = None
    routes: tuple[str, ...] = ()
    sample_percent: float = Field(default=10.0, ge=0, le=100)
    labels: tuple[JudgedLabel, ...] = ("equivalent", "minor")
    budget_usd_per_hour: float = Field(default=1.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1, le=256)
    policy_file: str = "policies/judge.json"

    @field_validator("routes")
    @classmethod
    def _route_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not prefix.startswith("/"):
                raise ValueError(f"{prefix!r} is not a route prefix such as '/openai'")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> JudgeSection:
        if not self.enabled:
            return self
        if not self.model:
            raise ValueError("enabled needs `model`: the name of one of `models`")
        if not self.routes:
            raise ValueError("enabled needs `routes`: the route prefixes whose answers "
                             "may be sent to the judge model (none are by default)")
        if not self.labels:
            raise ValueError("enabled needs `labels`: which rules labels to judge")
        return self


class ComparisonSection(Section):
    """How legacy and orchestrator answers are compared and reported.

    `inject_stream_usage_routes`: route prefixes whose OpenAI chat streams get
    `stream_options.include_usage` added upstream when the client did not ask (the
    extra usage chunk is stripped from the client stream). Off by default: it changes
    the request sent upstream, and some compatible providers reject the option.
    `max_text_chars` / `max_json_nodes` bound the CPU a comparison may take (it runs on
    the event loop): longer texts are compared on their first `max_text_chars`
    characters, bigger JSON documents on their first `max_json_nodes` nodes (each bound
    is about 5 ms of CPU).
    `report_*`: the report keeps per-route buckets of `report_bucket_seconds` in Redis
    for `report_retention_hours`, and the `report_top_requests` most divergent request
    ids per bucket; beside them, finer buckets of `report_fine_bucket_seconds` (0: none)
    kept `report_fine_retention_minutes`, so a short window counts only itself.
    `keep_examples`: with content capture opted in, the last N `major` and N `minor`
    pairs per route are kept (redacted, bounded) for the report to show (0: none).
    """

    noise_sample_percent: float = Field(default=10.0, ge=0, le=100)
    policy_file: str = "policies/divergence.json"
    inject_stream_usage_routes: tuple[str, ...] = ()
    max_text_chars: int = Field(default=10_000, ge=100, le=1_000_000)
    max_json_nodes: int = Field(default=10_000, ge=100, le=1_000_000)
    report_retention_hours: int = Field(default=168, ge=1, le=24 * 90)
    report_bucket_seconds: int = Field(default=3600, ge=60, le=86_400)
    report_top_requests: int = Field(default=20, ge=1, le=1000)
    report_fine_bucket_seconds: int = Field(default=10, ge=0, le=600)
    report_fine_retention_minutes: int = Field(default=120, ge=1, le=24 * 60)
    keep_examples: int = Field(default=0, ge=0, le=100)
    judge: JudgeSection = JudgeSection()

    @model_validator(mode="after")
    def _bounded_buckets(self) -> ComparisonSection:
        buckets = self.report_retention_hours * 3600 // self.report_bucket_seconds
        if buckets > 5000:
            raise ValueError(
                f"report_retention_hours / report_bucket_seconds gives {buckets} buckets "
                "per route (at most 5000): use longer buckets or a shorter retention")
        fine = self.report_fine_bucket_seconds
        if fine:
            if fine >= self.report_bucket_seconds:
                raise ValueError(
                    f"report_fine_bucket_seconds ({fine}) must be shorter than "
                    f"report_bucket_seconds ({self.report_bucket_seconds}), or 0 for none")
            buckets = self.report_fine_retention_minutes * 60 // fine
            if buckets > 5000:
                raise ValueError(
                    f"report_fine_retention_minutes / report_fine_bucket_seconds gives "
                    f"{buckets} fine buckets per route (at most 5000): use longer fine "
                    "buckets or a shorter fine retention")
        return self
