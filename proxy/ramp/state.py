"""The ramp's state: which step, since when, whether it runs, and the policy it runs on.

Layer: pure core. One JSON document in Redis (`{prefix}:ramp:state`, see
`proxy.ramp.state_store`); every transition returns a new, validated state:

    (none) --start--> running --promote--> running (next step) ... --complete--> completed
    running --pause--> paused --resume--> running
    running | paused --rollback--> rolled_back            (an operator starts it again)
    running | paused --stop--> stopped                    (an operator starts it again)

A pause comes from an operator (`llm-shadow ramp pause`) or from the ramp itself when a
person changed the flags it controls (`flags_seen`, see `proxy.ramp.levers`): the ramp
yields and says who changed what and why.

The policy is stored with the state when the ramp starts, so every replica evaluates the
same schedule whatever version of `policies/ramp.json` its image carries; changing the
policy means starting the ramp again.

`applied` says whether the flags of this state have been written: a transition that
changes traffic (start, promote, rollback) sets it False, and whoever applies the
flags sets it True, recording what the flags it controls looked like then
(`flags_seen`) and the snapshot version (`flags_version`); `llm-shadow ramp resume`
applies the step's flags again the same way. A stop leaves the flags as they are. The
state is always written before the flags, so a writer that stops in between leaves
`applied` False and the replica holding the ramp lock finishes the job.
Pausing stops promotions only: guardrails are still evaluated, and a clear breach still
rolls back.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from proxy.config.load import format_validation_error
from proxy.ramp.measurement import Baseline
from proxy.ramp.schedule import RampPolicy, Step

Status = Literal["running", "paused", "rolled_back", "completed", "stopped"]
Event = Literal["start", "promote", "complete", "rollback", "pause", "resume", "stop"]
ACTIVE: frozenset[Status] = frozenset({"running", "paused"})
MAX_REASON = 2000


class RampStateInvalid(ValueError):
    """The stored state cannot be read (hand-edited, or written by another version)."""


class RampState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_version: Literal[1] = Field(default=1, alias="schema")
    status: Status
    policy: RampPolicy
    policy_source: str = ""
    step: int = Field(ge=0)
    started_at: float
    started_by: str
    step_started_at: float
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    applied: bool = False
    flags_version: int | None = None
    flags_seen: dict[str, Any] = Field(default_factory=dict)
    event: Event
    updated_at: float
    updated_by: str
    reason: str = Field(default="", max_length=MAX_REASON)

    @model_validator(mode="after")
    def _step_exists(self) -> RampState:
        if self.step >= len(self.policy.steps):
            raise ValueError(f"step {self.step} is past the policy's "
                             f"{len(self.policy.steps)} steps")
        return self

    @property
    def current(self) -> Step:
        return self.policy.steps[self.step]

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def needs_runner(self) -> bool:
        """Whether a replica has anything to do: evaluate, or finish applying flags."""
        return self.active or not self.applied

    @property
    def is_last_step(self) -> bool:
        return self.step == len(self.policy.steps) - 1

    def position(self) -> str:
        """`step 3/8 "shadow 25%"`, for messages."""
        return f'step {self.step + 1}/{len(self.policy.steps)} "{self.current.label}"'

    def _next(self, event: Event, now: float, actor: str, reason: str,
              **changes: object) -> RampState:
        data = as_json(self)
        data.update(changes, event=event, updated_at=now, updated_by=actor,
                    reason=clip(reason))
        return RampState.model_validate(data)

    def promoted(self, *, now: float, baselines: dict[str, Baseline], actor: str,
                 reason: str) -> RampState:
        return self._next("promote", now, actor, reason, step=self.step + 1,
                          step_started_at=now, baselines=baselines, applied=False)

    def completed(self, *, now: float, actor: str, reason: str) -> RampState:
        return self._next("complete", now, actor, reason, status="completed")

    def rolled_back(self, *, now: float, actor: str, reason: str) -> RampState:
        return self._next("rollback", now, actor, reason, status="rolled_back", applied=False)

    def paused(self, *, now: float, actor: str, reason: str) -> RampState:
        return self._next("pause", now, actor, reason, status="paused")

    def resumed(self, *, now: float, actor: str, reason: str) -> RampState:
        return self._next("resume", now, actor, reason, status="running")

    def stopped(self, *, now: float, actor: str, reason: str) -> RampState:
        """Ended by an operator; the flags stay as they are."""
        return self._next("stop", now, actor, reason, status="stopped", applied=True)

    def marked_applied(self, flags_seen: dict[str, Any] | None = None,
                       flags_version: int | None = None) -> RampState:
        """The same transition, its flags written (the history keeps the transition),
        with what the flags the ramp controls looked like after the write."""
        return self.model_copy(update={"applied": True, "flags_seen": flags_seen or {},
                                       "flags_version": flags_version})


def new_ramp(policy: RampPolicy, *, source: str, step: int, now: float, actor: str,
             reason: str, baselines: dict[str, Baseline]) -> RampState:
    """A ramp starting at `step` (0-based), flags not yet applied."""
    return RampState.model_validate({
        "status": "running", "policy": policy.to_dict(), "policy_source": source,
        "step": step, "started_at": now, "started_by": actor, "step_started_at": now,
        "baselines": baselines, "applied": False, "event": "start", "updated_at": now,
        "updated_by": actor, "reason": clip(reason),
    })


def as_json(state: RampState) -> dict[str, Any]:
    """The state as JSON data that parses back to an equal state."""
    data = state.model_dump(mode="json", by_alias=True)
    data["policy"] = state.policy.to_dict()
    return data


def encode_state(state: RampState) -> bytes:
    return orjson.dumps(as_json(state))


def parse_state(raw: bytes | str) -> RampState:
    try:
        return RampState.model_validate_json(raw)
    except ValidationError as exc:
        raise RampStateInvalid(format_validation_error(exc, "ramp state")) from None


def clip(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
