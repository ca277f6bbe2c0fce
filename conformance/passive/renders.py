"""The rules renders show: their lifecycle, replayed keys, not_ready, isolation, engagement.

Each check reads one answer against what the history has shown of the render so far, and
tells the verdicts what it decided.
"""

from __future__ import annotations

import re

from conformance.passive.history import History, SeenRender, digest
from conformance.passive.traffic import Observed
from conformance.passive.verdicts import Verdicts, code_of, json_of

_RENDER = re.compile(r"^/v1/renders/(?P<render>[^/]+)(?P<rest>/.*)?$")
_ORDER = {"queued": 0, "rendering": 1, "succeeded": 2, "failed": 2}


def render_of(path: str) -> str:
    """The render a ``/v1/renders/{id}…`` path names."""
    matched = _RENDER.match(path)
    assert matched is not None  # the operation's path template matched it
    return matched.group("render")


class RenderChecks:
    """The checks of the render operations (and the ownership shares rely on)."""

    def __init__(self, history: History, verdicts: Verdicts) -> None:
        self._history = history
        self._verdicts = verdicts

    def _render(self, render_id: str, project: str | None) -> SeenRender:
        seen = self._history.renders.get(render_id)
        if seen is None:
            seen = SeenRender(project)
            self._history.renders[render_id] = seen
        return seen

    def owned(self, observed: Observed, render_id: str, project: str | None) -> bool:
        """Whether the render is the key's; another project's render answered 2xx is a finding.

        A render first seen with another key whose project is not known to differ (a
        project may hold several keys) counts as the key's when the answer is 2xx; a 404
        tells the two keys apart.
        """
        seen = self._history.renders.get(render_id)
        if seen is None:
            return True
        crossing = self._history.crossing(seen.project, project)
        if crossing is False:
            return True
        won = observed.exchange.status < 300
        if crossing is None:
            if won:
                return True
            if observed.exchange.status == 404:
                self._history.keep_apart(seen.project, project)
        if won:
            self._verdicts.found(
                "ISOLATION-RENDERS",
                f"{observed.exchange.summary()}: another project's render answered",
                "404 not_found: a render of another project does not exist for this key",
                *(o for o in (seen.status_seen, observed) if o is not None),
            )
        elif observed.exchange.status == 404:
            self._verdicts.decided("ISOLATION-RENDERS")
        return False

    def _status_seen(self, observed: Observed, render_id: str, project: str | None) -> None:
        body = json_of(observed)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in _ORDER:
            return
        seen = self._render(render_id, project)
        before = seen.status_seen
        if seen.status is not None and before is not None and before.ended <= observed.started:
            went_back = _ORDER[status] < _ORDER[seen.status] or (
                _ORDER[status] == 2 and status != seen.status
            )
            if went_back:
                self._verdicts.found(
                    "RENDER-LIFECYCLE",
                    f"render {render_id} went from {seen.status} to {status}",
                    "queued → rendering → succeeded | failed, never back",
                    before,
                    observed,
                )
            else:
                self._verdicts.decided("RENDER-LIFECYCLE")
        seen.status, seen.status_seen = status, self._verdicts.keep(observed)
        if status == "succeeded" and seen.succeeded_by is None:
            seen.succeeded_by = observed.ended

    def submitted(self, observed: Observed, path: str, project: str | None) -> None:
        """A render submitted: its status, and a replayed ``Idempotency-Key``."""
        exchange = observed.exchange
        body = json_of(observed)
        if exchange.status not in (200, 202) or not isinstance(body, dict):
            return
        render_id = str(body.get("id"))
        self._status_seen(observed, render_id, project)
        key = exchange.request_headers.get("idempotency-key")
        if key is None:
            return
        replayed = self._history.replays.get((project, digest(key)))
        if replayed is not None and replayed[1].ended <= observed.started:
            if replayed[0] != render_id:
                self._verdicts.found(
                    "RENDER-IDEMPOTENT",
                    f"one Idempotency-Key gave render {replayed[0]}, then {render_id}",
                    "a replay of the key in the project answers the render it made",
                    replayed[1],
                    observed,
                )
            else:
                self._verdicts.decided("RENDER-IDEMPOTENT")
        for (other, key_digest), (made, shown) in list(self._history.replays.items()):
            if (
                key_digest == digest(key)
                and self._history.crossing(other, project)
                and shown.ended <= observed.started
            ):
                if made == render_id:
                    self._verdicts.found(
                        "RENDER-IDEMPOTENT-PER-PROJECT",
                        f"two projects' submissions with one Idempotency-Key gave render {made}",
                        "a key is the project's own: another project's use makes a new render",
                        shown,
                        observed,
                    )
                else:
                    self._verdicts.decided("RENDER-IDEMPOTENT-PER-PROJECT")
        if replayed is None:
            self._history.replays[(project, digest(key))] = (
                render_id,
                self._verdicts.keep(observed),
            )

    def read_render(self, observed: Observed, path: str, project: str | None) -> None:
        """A render read: of the key's project, and never back in its lifecycle."""
        render_id = render_of(path)
        if not self.owned(observed, render_id, project):
            return
        if observed.exchange.status == 200:
            self._status_seen(observed, render_id, project)

    def not_ready(
        self, rule_id: str, observed: Observed, render_id: str, project: str | None
    ) -> bool:
        """A 409 for a render seen succeeded is the rule's finding; ``False`` when owned not."""
        if not self.owned(observed, render_id, project):
            return False
        seen = self._history.renders.get(render_id)
        if seen is None or seen.succeeded_by is None or seen.succeeded_by > observed.started:
            return True
        if observed.exchange.status == 409:
            self._verdicts.found(
                rule_id,
                f"{observed.exchange.summary()}: {code_of(observed)} for a render seen succeeded",
                "a succeeded render stays succeeded: no 409",
                *(o for o in (seen.status_seen, observed) if o is not None),
            )
        else:
            self._verdicts.decided(rule_id)
        return True

    def downloaded(self, observed: Observed, path: str, project: str | None) -> None:
        """A render downloaded: never ``not_ready`` once seen succeeded."""
        render_id = render_of(path)
        self.not_ready("DOWNLOAD-NOT-READY", observed, render_id, project)

    def reported(self, observed: Observed, path: str, project: str | None) -> None:
        """A partner event recorded: only on the key's own renders."""
        self.owned(observed, _RENDER.match(path).group("render"), project)  # type: ignore[union-attr]

    def engagement_read(self, observed: Observed, path: str, project: str | None) -> None:
        """A render's engagement read: its total the sum, no count going down."""
        render_id = render_of(path)
        body = json_of(observed)
        if not self.owned(observed, render_id, project) or observed.exchange.status != 200:
            return
        counts = body.get("counts") if isinstance(body, dict) else None
        if not isinstance(counts, dict):
            return
        counted = {k: v for k, v in counts.items() if isinstance(v, int)}
        total = body.get("total")
        if isinstance(total, int) and total != sum(counted.values()):
            self._verdicts.found(
                "ENGAGEMENT-COUNTS",
                f"render {render_id}'s engagement total is {total}, "
                f"its counts add up to {sum(counted.values())}",
                "total: the sum of counts",
                observed,
            )
            return
        before = self._history.engagement.get(render_id)
        if before is not None and before[1].ended <= observed.started:
            fell = sorted(k for k, v in before[0].items() if counted.get(k, 0) < v)
            if fell:
                self._verdicts.found(
                    "ENGAGEMENT-COUNTS",
                    f"render {render_id}'s {', '.join(fell)} count went down",
                    "counts of events never go down",
                    before[1],
                    observed,
                )
                return
        self._verdicts.decided("ENGAGEMENT-COUNTS")
        self._history.engagement[render_id] = (counted, self._verdicts.keep(observed))
