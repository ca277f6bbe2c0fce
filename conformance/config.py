"""How a run is configured: the target's options and the profile's volume.

Profiles fix every number that decides how much is tried, so a run is reproducible from
its profile and seed alone: ``quick`` (pre-commit), ``default`` (CI), ``thorough`` (nightly).
Every profile runs every rule; they differ only in examples, steps and concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


@dataclass(frozen=True)
class Profile:
    """The volume of one run."""

    name: str
    state_machine_examples: int
    state_machine_steps: int
    schemathesis_examples: int
    schemathesis_phases: str
    concurrency: int
    shrink: bool

    def machine_settings(self) -> settings:
        """How a state machine (the suite's model, diff's lockstep) runs in this profile.

        Over a network: no deadline, no example database; shrinking where the profile says;
        slow steps and precondition filters are what a remote target costs, not a fault.
        """
        phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
        if self.shrink:
            phases.append(Phase.shrink)
        return settings(
            phases=phases,
            max_examples=self.state_machine_examples,
            stateful_step_count=self.state_machine_steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )


_PHASES = "examples,coverage,fuzzing,stateful"
PROFILES = {
    # quick reports the failing sequence as found; the others shrink it to the shortest.
    "quick": Profile("quick", 4, 12, 3, _PHASES, 10, shrink=False),
    "default": Profile("default", 20, 25, 15, _PHASES, 50, shrink=True),
    "thorough": Profile("thorough", 150, 40, 150, _PHASES, 100, shrink=True),
}

DEFAULT_SEED = 20261121


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to know, from the command line or the pytest options."""

    base_url: str
    api_key: str | None = None
    other_api_key: str | None = None
    render_id: str | None = None
    other_render_id: str | None = None
    """A succeeded render of the other project (else one is rendered from the template)."""
    template_slug: str | None = None
    template_data: dict[str, Any] | None = None
    not_ready_render_id: str | None = None
    share_base_url: str | None = None
    read_only: bool = False
    keep: bool = False
    """On the mock, keep the run's projects, so the report's curl lines still run."""
    max_rps: float | None = None
    profile: Profile = PROFILES["default"]
    seed: int = DEFAULT_SEED
    render_timeout: float = 120.0
    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    webhook_listen: str | None = None
    """``HOST:PORT`` the run receives a deployment's webhook deliveries on."""
    webhook_secret: str | None = None
    webhook_wait: float = 30.0
    """Seconds a webhook rule waits for a delivery."""


UTF8_CHARACTERS = st.characters(exclude_categories=["Cs"])
"""Every code point UTF-8 encodes: all but the surrogates (which ``characters()`` leaves out
by default too). Said so rather than with ``codec="utf-8"``, which makes hypothesis check
each of the 1.1 million code points against the codec in every run: seconds of a quick
run's CPU."""
