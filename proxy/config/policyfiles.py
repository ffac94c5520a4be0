"""The policy files a configuration names, loaded the one way `serve` and `check-config`
both use.

Layer: configuration loading (reads files, like `proxy.config.load`), above the policy
models of each concern: the divergence policy (`comparison.policy_file`,
`proxy.comparison.policy`), the orchestrator's validation rules
(`orchestrator.validation_policy_file`, `proxy.orchestrator.validation`), the ramp
schedule (`policies/ramp.json` beside the configuration, which `llm-shadow ramp start`
reads; `serve` does not, the ramp's state in Redis carries the schedule it runs) and
the judge's rubric (`comparison.judge.policy_file`, `proxy.judge.rubric`: no built-in
stands in for it, so a missing file is an error only while the judge is enabled).

Why one module: `check-config` must fail exactly where `serve` would (an unknown key in
`policies/divergence.json` stops both, naming the file and the key) and must say which
policies are built-in because their file is missing. A missing file at its default path
means the built-in policy (logged at INFO: running without `policies/` is supported); a
missing file at a path the operator configured is a WARNING, since it is likely a typo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from proxy.comparison.policy import DivergencePolicy
from proxy.comparison.policy import load_policy as load_divergence_file
from proxy.config.comparison import ComparisonSection, JudgeSection
from proxy.config.load import ConfigError, Settings
from proxy.config.orchestrator import OrchestratorSection
from proxy.judge.rubric import Rubric, load_rubric
from proxy.orchestrator.validation import DEFAULT_POLICY, PolicyError, ValidationPolicy
from proxy.orchestrator.validation import load_policy as load_validation_file
from proxy.ramp.schedule import load_policy as load_ramp_file

log = logging.getLogger("llm_shadow.config")

RAMP_POLICY = "policies/ramp.json"  # relative to the configuration file's folder


@dataclass(frozen=True)
class PolicyFile:
    """One policy: which key names it, where it is, and whether it exists."""

    name: str
    key: str
    path: Path
    found: bool
    explicit: bool  # the key was set to something other than its default
    built_in: bool = True  # a built-in policy stands in when the file is missing
    without: str = ""  # what a missing file means when no built-in stands in
    required: bool = False  # a missing file is an error

    def describe(self) -> str:
        if self.found:
            return f"{self.name} policy: {self.path}"
        if not self.built_in:
            return f"{self.name} policy: none ({self.path} not found; {self.without})"
        return f"{self.name} policy: built-in ({self.path} not found)"

    def missing_error(self) -> str:
        return f"{self.path}: not found ({self.key}): {self.without}"

    def note_missing(self) -> None:
        """Log that the built-in policy is used (a warning if the path was configured)."""
        if self.found:
            return
        level = logging.WARNING if self.explicit else logging.INFO
        log.log(level, "%s not found (%s): using the built-in %s policy", self.path,
                self.key, self.name)


def divergence_file(settings: Settings) -> PolicyFile:
    value = settings.config.comparison.policy_file
    default = ComparisonSection.model_fields["policy_file"].default
    return _file("divergence", "comparison.policy_file", settings, value, default)


def validation_file(settings: Settings) -> PolicyFile:
    value = settings.config.orchestrator.validation_policy_file
    default = OrchestratorSection.model_fields["validation_policy_file"].default
    return _file("validation", "orchestrator.validation_policy_file", settings, value,
                 default)


def ramp_file(settings: Settings) -> PolicyFile:
    path = settings.resolve(RAMP_POLICY)
    return PolicyFile("ramp", "ramp start's default policy", path, path.is_file(),
                      explicit=False, built_in=False,
                      without="`llm-shadow ramp start` then needs --policy")


def judge_file(settings: Settings) -> PolicyFile:
    section = settings.config.comparison.judge
    default = JudgeSection.model_fields["policy_file"].default
    path = settings.resolve(section.policy_file)
    return PolicyFile("judge", "comparison.judge.policy_file", path, path.is_file(),
                      explicit=section.policy_file != default, built_in=False,
                      without="the judge cannot run without its prompt",
                      required=section.enabled)


def load_divergence(settings: Settings) -> DivergencePolicy:
    """The divergence policy `serve` compares with; `ConfigError` if the file is invalid."""
    file = divergence_file(settings)
    file.note_missing()
    return load_divergence_file(file.path if file.found else None)


def load_validation(settings: Settings) -> tuple[ValidationPolicy, Path | None]:
    """The orchestrator's validation rules and their file (None: built-in); raises
    `PolicyError` if the file is invalid."""
    file = validation_file(settings)
    file.note_missing()
    if not file.found:
        return DEFAULT_POLICY, None
    return load_validation_file(file.path), file.path


def load_judge(settings: Settings) -> Rubric | None:
    """The judge's rubric; None when its file is missing and the judge is off;
    `ConfigError` when the file is invalid, or missing while the judge is enabled."""
    file = judge_file(settings)
    if not file.found:
        if file.required:
            raise ConfigError(file.missing_error())
        return None
    return load_rubric(file.path)


def check(settings: Settings) -> list[tuple[PolicyFile, str | None]]:
    """Every policy file, each with the error that would stop it from loading (None when
    it loads or is built-in). Nothing is logged."""
    loaders = ((divergence_file(settings), load_divergence_file),
               (validation_file(settings), load_validation_file),
               (ramp_file(settings), load_ramp_file),
               (judge_file(settings), load_rubric))
    results: list[tuple[PolicyFile, str | None]] = []
    for file, load in loaders:
        error = file.missing_error() if file.required and not file.found else None
        if file.found:
            try:
                load(file.path)
            except (ConfigError, PolicyError) as exc:
                error = str(exc)
        results.append((file, error))
    return results


def _file(name: str, key: str, settings: Settings, value: str, default: str) -> PolicyFile:
    path = settings.resolve(value)
    return PolicyFile(name, key, path, path.is_file(), explicit=value != default)
