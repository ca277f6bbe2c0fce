"""Passive conformance: exchanges read in order, checked against the spec and the rules.

Each exchange is checked against openapi.yaml and against the catalogue's rules that the
history seen so far makes decidable.

``run`` acts and then checks; here nothing is sent, so a rule is decided only when the
traffic happens to show what it speaks of: a second revoke of a share seen revoked, a link
opened after its share was revoked, a list of a render some of whose shares were seen made.
Each rule keeps the catalogue's id, statement and source (``conformance/rules.py``), and a
finding is judged as ``run`` judges it (``conformance/judge.py``): a fact broken fails, a
Part B decision taken otherwise is reported as deviated. A rule the traffic never decided is
reported as not decidable, never as passed.

"Before" means that an answer had ended before the next request started; answers that
overlap in time decide nothing about each other, except two revokes of one share that
both won (one revoke wins).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

import craftkit_spec
from conformance.client import Exchange
from conformance.judge import judge_citation
from conformance.passive.history import History, SeenRender, SeenShare, digest
from conformance.passive.traffic import Observed
from conformance.responses import ResponseContract
from conformance.rules import Rule, all_rules
from conformance.runner import RuleResult, RunResult

FINDINGS_KEPT = 10
"""Findings kept per rule for the report (all are counted)."""
KEPT_BODY_BYTES = 4096
"""How much of each body an exchange the history keeps (as later evidence) holds."""

DECIDES: dict[str, str] = {
    "SPEC-RESPONSES": "any answer of the API",
    "AUTH-MISSING-KEY": "a request without Authorization to an operation that needs a key",
    "AUTH-MALFORMED-KEY": "a request whose Authorization is not a Bearer key",
    "RENDER-LIFECYCLE": "a render read twice",
    "RENDER-IDEMPOTENT": "a render submission replayed with its Idempotency-Key",
    "RENDER-IDEMPOTENT-PER-PROJECT": "one Idempotency-Key used by two projects",
    "ISOLATION-RENDERS": "a render reached with another project's key",
    "ISOLATION-SHARES": "a share revoked with another project's key",
    "WRONG-PARENT-404": "a share revoked through another render of its project",
    "SHARE-NOT-READY": "a share created on a render seen succeeded",
    "EMAIL-NOT-READY": "an email sent of a render seen succeeded",
    "DOWNLOAD-NOT-READY": "a download of a render seen succeeded",
    "VALUES-AGREE": "one share shown by two answers",
    "SHARE-LIST-ORDER": "a list of two shares or more",
    "SHARE-LIST-OWN-RENDER": "a list of a render some of whose shares were seen made",
    "SHARE-REVOKE-ONCE": "a share revoked again after a revoke had answered",
    "SHARE-REVOKE-CONCURRENT": "two revokes of one share in flight at once",
    "LINK-REVOKED-404": "a link opened after its share was seen revoked",
    "LINK-CLICK-COUNT": "one share's clickCount shown twice",
    "ENGAGEMENT-COUNTS": "a render's engagement read",
}
"""The rules traffic can decide, and what it must show for each."""

_RENDER = re.compile(r"^/v1/renders/(?P<render>[^/]+)(?P<rest>/.*)?$")
_SHARE = re.compile(r"^/v1/renders/(?P<render>[^/]+)/shares/(?P<share>[^/]+)$")
_LINK = re.compile(r"^/share/(?P<token>[^/]+)(?:/download)?$")
_ORDER = {"queued": 0, "rendering": 1, "succeeded": 2, "failed": 2}
_COMPARED = ("createdAt", "expiresAt", "channel", "shareToken", "shareUrl")
_SECRET_VALUES = ("shareToken", "shareUrl")
_PROJECT_RESET = re.compile(r"^/_mock/projects/([^/]+)(/reset)?$")
"""``DELETE /_mock/projects/{id}``, or ``POST`` of its ``/reset``."""
_STATUS_SET = re.compile(r"^/_mock/renders/([^/]+)/status$")


@dataclass(frozen=True)
class Finding:
    """One place the traffic departs from a rule, with the exchanges that show it."""

    title: str
    expected: str
    exchanges: tuple[Exchange, ...]


@dataclass
class _Tally:
    decided: int = 0
    count: int = 0
    findings: list[Finding] = field(default_factory=list)


def _json(observed: Observed) -> Any:
    if not observed.body_known:
        return None
    try:
        return orjson.loads(observed.exchange.response_body)
    except orjson.JSONDecodeError:
        return None


def _code(observed: Observed) -> str | None:
    body = _json(observed)
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class PassiveChecker:
    """Feed it exchanges in the order they started; ``result`` is the report."""

    def __init__(self, source: str = "traffic") -> None:
        self.source = source
        self.contract = ResponseContract()
        self.history = History()
        self.exchanges = 0
        self.unchecked = 0
        self.operations: Counter[tuple[str, int]] = Counter()
        self._rules = {r.id: r for r in all_rules() if r.id in DECIDES}
        self._tallies = {rule_id: _Tally() for rule_id in self._rules}
        spec = craftkit_spec.load_resolved()
        self._keyed = {
            op.operation_id
            for op in craftkit_spec.iter_operations(spec)
            if op.definition.get("security", spec.get("security")) != []
        }
        self._handlers: dict[str, Callable[[Observed, str, str | None], None]] = {
            "renderTemplate": self._submitted,
            "getRender": self._read_render,
            "downloadRender": self._downloaded,
            "recordRenderEvent": self._reported,
            "createShare": self._shared,
            "emailRender": self._emailed,
            "listShares": self._listed,
            "revokeShare": self._revoked,
            "viewSharePage": self._link_opened,
            "downloadSharedPdf": self._link_opened,
            "getRenderEngagement": self._engagement_read,
        }
        self._kept: dict[int, tuple[Observed, Observed]] = {}
        self._all_operations = sorted(
            {op.operation_id for op in craftkit_spec.iter_operations(spec)}
        )

    # ---- the report --------------------------------------------------------------------

    @property
    def findings(self) -> int:
        """Findings so far, of every rule."""
        return sum(tally.count for tally in self._tallies.values())

    def result(self, seconds: float = 0.0) -> RunResult:
        """Every rule: failed or deviated with its findings, passed, or not decidable."""
        results = [self._outcome(rule, self._tallies[rule.id]) for rule in self._rules.values()]
        seen_operations = {op for op, _ in self.operations}
        coverage = [
            f"{op}: {', '.join(str(s) for o, s in sorted(self.operations) if o == op)}"
            for op in self._all_operations
            if op in seen_operations
        ]
        never = [op for op in self._all_operations if op not in seen_operations]
        return RunResult(
            base_url=self.source,
            is_mock=False,
            profile="passive",
            seed=0,
            results=results,
            seconds=seconds,
            requests=self.exchanges,
            cleanup=(
                f"nothing to clean: {self.exchanges} exchange(s) read, none sent"
                + (f" ({self.unchecked} not the API's, passed unchecked)" if self.unchecked else "")
            ),
            unprovoked=self.contract.unprovoked(),
            undeclared=self.contract.undeclared(),
            provoked=self.contract.codes_provoked(),
            coverage={"exercised": coverage, "never exercised": never},
        )

    def _outcome(self, rule: Rule, tally: _Tally) -> RuleResult:
        if tally.findings:
            first = tally.findings[0]
            judgement = judge_citation(rule.source)
            more = f" (and {tally.count - 1} more)" if tally.count > 1 else ""
            evidence = "\n".join(f"also: {f.title}" for f in tally.findings[1:]) + (
                f"\n… {tally.count - len(tally.findings)} more not kept"
                if tally.count > len(tally.findings)
                else ""
            )
            return RuleResult(
                rule,
                "failed" if judgement.departs else "deviated",
                0.0,
                reason="" if judgement.departs else judgement.reason(),
                title=first.title + more,
                expected=first.expected,
                evidence=evidence.strip(),
                exchanges=first.exchanges,
                culprit=first.exchanges[-1],
            )
        if tally.decided:
            return RuleResult(rule, "passed", 0.0, reason=f"decided {tally.decided} time(s)")
        return RuleResult(
            rule,
            "skipped",
            0.0,
            reason=f"not decidable: the traffic never showed {DECIDES[rule.id]}",
        )

    def _keep(self, observed: Observed) -> Observed:
        """The exchange as the history keeps it: its bodies cut to ``KEPT_BODY_BYTES``.

        Only a later finding shows it, as evidence; a whole list kept for each of its rows
        would make the history's memory the traffic's.
        """
        exchange = observed.exchange
        if max(len(exchange.request_body), len(exchange.response_body)) <= KEPT_BODY_BYTES:
            return observed
        kept = self._kept.get(id(observed))
        if kept is None or kept[0] is not observed:
            cut = replace(
                exchange,
                request_body=exchange.request_body[:KEPT_BODY_BYTES],
                response_body=exchange.response_body[:KEPT_BODY_BYTES],
            )
            kept = (observed, replace(observed, exchange=cut))
            self._kept = {id(observed): kept}  # the exchange being read, only
        return kept[1]

    def _decided(self, rule_id: str) -> None:
        self._tallies[rule_id].decided += 1

    def _found(self, rule_id: str, title: str, expected: str, *shown: Observed) -> None:
        tally = self._tallies[rule_id]
        tally.decided += 1
        tally.count += 1
        if len(tally.findings) < FINDINGS_KEPT:
            tally.findings.append(Finding(title, expected, tuple(o.exchange for o in shown)))

    # ---- reading ------------------------------------------------------------------------

    def feed_all(self, traffic: Iterable[Observed]) -> None:
        """Every exchange of a recording, in order."""
        for observed in traffic:
            self.feed(observed)

    def feed(self, observed: Observed) -> None:
        """One exchange: checked, then remembered."""
        exchange = observed.exchange
        path = urlsplit(exchange.url).path
        if path.startswith("/_mock"):
            self.unchecked += 1
            self._control(observed, path)
            return
        operation = self.contract.operation_id(exchange.method, path)
        if operation is None and not path.startswith(("/v1/", "/share/", "/health")):
            self.unchecked += 1
            return
        self.exchanges += 1
        self.operations[(operation or "(no operation)", exchange.status)] += 1
        self._spec(observed, path)
        if operation is None:
            return
        usable, project = self._project(observed, operation)
        if not usable:
            return
        handler = self._handlers.get(operation)
        if handler is not None:
            handler(observed, path, project)

    def _control(self, observed: Observed, path: str) -> None:
        """The mock's control calls: a project made (its key told apart), a reset (forget)."""
        exchange = observed.exchange
        if exchange.status >= 300:
            return
        if exchange.method == "POST" and path == "/_mock/projects":
            body = _json(observed)
            if isinstance(body, dict) and isinstance(body.get("apiKey"), str):
                key = digest(f"Bearer {body['apiKey']}")
                self.history.projects[key] = str(body.get("projectId"))
            return
        project = _PROJECT_RESET.match(path)
        if project is not None and (exchange.method == "DELETE") == (project.group(2) is None):
            self.history.forget(self.history.keys_of(project.group(1)))
        elif exchange.method == "POST" and path == "/_mock/reset":
            self.history.forget()
        elif exchange.method == "POST" and (status := _STATUS_SET.match(path)) is not None:
            self.history.forget_render(status.group(1))

    def _spec(self, observed: Observed, path: str) -> None:
        exchange = observed.exchange
        if observed.body_known and exchange.method != "HEAD":
            violations = self.contract.check(
                exchange.method, path, exchange.status, exchange.response_headers,
                exchange.response_body,
            )  # fmt: skip
        else:
            violations = self.contract.check_status(exchange.method, path, exchange.status)
        if not violations:
            self._decided("SPEC-RESPONSES")
            return
        shown = replace(observed, exchange=replace(exchange, violations=tuple(violations)))
        self._found(
            "SPEC-RESPONSES",
            f"{exchange.summary()}: {violations[0].problem}",
            "every answer as openapi.yaml documents it",
            shown,
        )

    def _project(self, observed: Observed, operation: str) -> tuple[bool, str | None]:
        """The key's project (its digest; ``None`` for a public operation), if it was let in.

        A refusal (401, 403) says nothing of state: it is checked here and goes no further.
        """
        header = observed.exchange.request_headers.get("authorization")
        if operation not in self._keyed:
            return True, None
        if header is None or not re.fullmatch(r"Bearer \S+", header):
            rule_id = "AUTH-MISSING-KEY" if header is None else "AUTH-MALFORMED-KEY"
            if observed.exchange.status == 401 and _code(observed) in ("unauthorized", None):
                self._decided(rule_id)
            else:
                self._found(
                    rule_id,
                    f"{observed.exchange.summary()} answered without a usable key",
                    "401 unauthorized before anything else",
                    observed,
                )
            return False, None
        if observed.exchange.status in (401, 403):
            return False, None
        return True, digest(header)

    # ---- renders ------------------------------------------------------------------------

    def _render(self, render_id: str, project: str | None) -> SeenRender:
        seen = self.history.renders.get(render_id)
        if seen is None:
            seen = SeenRender(project)
            self.history.renders[render_id] = seen
        return seen

    def _owned(self, observed: Observed, render_id: str, project: str | None) -> bool:
        """Whether the render is the key's; another project's render answered 2xx is a finding.

        A render first seen with another key whose project is not known to differ (a
        project may hold several keys) counts as the key's when the answer is 2xx; a 404
        tells the two keys apart.
        """
        seen = self.history.renders.get(render_id)
        if seen is None:
            return True
        crossing = self.history.crossing(seen.project, project)
        if crossing is False:
            return True
        won = observed.exchange.status < 300
        if crossing is None:
            if won:
                return True
            if observed.exchange.status == 404:
                self.history.keep_apart(seen.project, project)
        if won:
            self._found(
                "ISOLATION-RENDERS",
                f"{observed.exchange.summary()}: another project's render answered",
                "404 not_found: a render of another project does not exist for this key",
                *(o for o in (seen.status_seen, observed) if o is not None),
            )
        elif observed.exchange.status == 404:
            self._decided("ISOLATION-RENDERS")
        return False

    def _status_seen(self, observed: Observed, render_id: str, project: str | None) -> None:
        body = _json(observed)
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
                self._found(
                    "RENDER-LIFECYCLE",
                    f"render {render_id} went from {seen.status} to {status}",
                    "queued → rendering → succeeded | failed, never back",
                    before,
                    observed,
                )
            else:
                self._decided("RENDER-LIFECYCLE")
        seen.status, seen.status_seen = status, self._keep(observed)
        if status == "succeeded" and seen.succeeded_by is None:
            seen.succeeded_by = observed.ended

    def _submitted(self, observed: Observed, path: str, project: str | None) -> None:
        exchange = observed.exchange
        body = _json(observed)
        if exchange.status not in (200, 202) or not isinstance(body, dict):
            return
        render_id = str(body.get("id"))
        self._status_seen(observed, render_id, project)
        key = exchange.request_headers.get("idempotency-key")
        if key is None:
            return
        replayed = self.history.replays.get((project, digest(key)))
        if replayed is not None and replayed[1].ended <= observed.started:
            if replayed[0] != render_id:
                self._found(
                    "RENDER-IDEMPOTENT",
                    f"one Idempotency-Key gave render {replayed[0]}, then {render_id}",
                    "a replay of the key in the project answers the render it made",
                    replayed[1],
                    observed,
                )
            else:
                self._decided("RENDER-IDEMPOTENT")
        for (other, key_digest), (made, shown) in list(self.history.replays.items()):
            if (
                key_digest == digest(key)
                and self.history.crossing(other, project)
                and shown.ended <= observed.started
            ):
                if made == render_id:
                    self._found(
                        "RENDER-IDEMPOTENT-PER-PROJECT",
                        f"two projects' submissions with one Idempotency-Key gave render {made}",
                        "a key is the project's own: another project's use makes a new render",
                        shown,
                        observed,
                    )
                else:
                    self._decided("RENDER-IDEMPOTENT-PER-PROJECT")
        if replayed is None:
            self.history.replays[(project, digest(key))] = (render_id, self._keep(observed))

    def _read_render(self, observed: Observed, path: str, project: str | None) -> None:
        render_id = _RENDER.match(path).group("render")  # type: ignore[union-attr]
        if not self._owned(observed, render_id, project):
            return
        if observed.exchange.status == 200:
            self._status_seen(observed, render_id, project)

    def _not_ready(
        self, rule_id: str, observed: Observed, render_id: str, project: str | None
    ) -> bool:
        """A 409 for a render seen succeeded is the rule's finding; ``False`` when owned not."""
        if not self._owned(observed, render_id, project):
            return False
        seen = self.history.renders.get(render_id)
        if seen is None or seen.succeeded_by is None or seen.succeeded_by > observed.started:
            return True
        if observed.exchange.status == 409:
            self._found(
                rule_id,
                f"{observed.exchange.summary()}: {_code(observed)} for a render seen succeeded",
                "a succeeded render stays succeeded: no 409",
                *(o for o in (seen.status_seen, observed) if o is not None),
            )
        else:
            self._decided(rule_id)
        return True

    def _downloaded(self, observed: Observed, path: str, project: str | None) -> None:
        render_id = _RENDER.match(path).group("render")  # type: ignore[union-attr]
        self._not_ready("DOWNLOAD-NOT-READY", observed, render_id, project)

    def _reported(self, observed: Observed, path: str, project: str | None) -> None:
        self._owned(observed, _RENDER.match(path).group("render"), project)  # type: ignore[union-attr]

    # ---- shares -------------------------------------------------------------------------

    def _values(self, share: SeenShare, row: dict[str, Any], observed: Observed) -> None:
        """What this answer shows of the share agrees with what the first one showed."""
        for name in _COMPARED:
            if name not in row:
                continue
            value = row[name]
            if name in _SECRET_VALUES and isinstance(value, str):
                value = digest(value)
            if name not in share.values:
                share.values[name] = value
                continue
            self._decided("VALUES-AGREE")
            if share.values[name] != value:
                secret = name in _SECRET_VALUES
                was, shown = ("one value", "another") if secret else (share.values[name], value)
                self._found(
                    "VALUES-AGREE",
                    f"share {row.get('id')}'s {name} was {was}, then {shown}",
                    f"one {name} for one share in every answer",
                    share.shown,
                    observed,
                )
        revoked_at = row.get("revokedAt")
        if revoked_at is not None:
            if (
                share.revoked_at is not None
                and share.revoked is not None
                and share.revoked_at != revoked_at
            ):
                self._found(
                    "VALUES-AGREE",
                    f"share {row.get('id')} was revoked at {share.revoked_at}, "
                    f"then at {revoked_at}",
                    "one revokedAt for one share in every answer",
                    share.revoked,
                    observed,
                )
            if share.revoked_by is None:
                share.revoked_at, share.revoked, share.revoked_by = (
                    revoked_at,
                    self._keep(observed),
                    observed.ended,
                )

    def _made(self, observed: Observed, path: str, project: str | None, rule_id: str) -> None:
        render_id = _RENDER.match(path).group("render")  # type: ignore[union-attr]
        if not self._not_ready(rule_id, observed, render_id, project):
            return
        body = _json(observed)
        if observed.exchange.status != 201 or not isinstance(body, dict) or "id" not in body:
            return
        share = SeenShare(project, render_id, self._keep(observed))
        self.history.shares[str(body["id"])] = share
        if isinstance(body.get("shareToken"), str):
            self.history.tokens[digest(body["shareToken"])] = str(body["id"])
        self._values(share, body, observed)

    def _shared(self, observed: Observed, path: str, project: str | None) -> None:
        self._made(observed, path, project, "SHARE-NOT-READY")

    def _emailed(self, observed: Observed, path: str, project: str | None) -> None:
        self._made(observed, path, project, "EMAIL-NOT-READY")

    def _listed(self, observed: Observed, path: str, project: str | None) -> None:
        render_id = _RENDER.match(path).group("render")  # type: ignore[union-attr]
        body = _json(observed)
        if not self._owned(observed, render_id, project) or observed.exchange.status != 200:
            return
        rows = body.get("shares") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return
        rows = [row for row in rows if isinstance(row, dict)]
        created = [str(row.get("createdAt")) for row in rows]
        if len(rows) >= 2:
            if created != sorted(created, reverse=True):
                self._found(
                    "SHARE-LIST-ORDER",
                    f"the list of render {render_id} is not newest first",
                    "shares by createdAt, newest first",
                    observed,
                )
            else:
                self._decided("SHARE-LIST-ORDER")
        listed = {str(row.get("id")) for row in rows}
        for row in rows:
            share = self.history.shares.get(str(row.get("id")))
            if share is None:
                continue
            if share.render != render_id:
                self._found(
                    "SHARE-LIST-OWN-RENDER",
                    f"the list of render {render_id} holds share {row.get('id')} "
                    f"of render {share.render}",
                    "only the render's own shares",
                    share.shown,
                    observed,
                )
                continue
            self._values(share, row, observed)
            self._clicks(share, row, observed)
        for share_id, share in list(self.history.shares.items()):
            if share.render != render_id or share.project != project:
                continue
            if share.shown.ended > observed.started or share.values.get("expiresAt") is not None:
                continue  # made meanwhile, or one that may have expired (notes B.4)
            if share_id in listed:
                self._decided("SHARE-LIST-OWN-RENDER")
            else:
                self._found(
                    "SHARE-LIST-OWN-RENDER",
                    f"share {share_id}, made on render {render_id}, is not in its list"
                    + (" (it was revoked)" if share.revoked_by is not None else ""),
                    "every share of the render, revoked ones included",
                    share.shown,
                    *((share.revoked,) if share.revoked is not None else ()),
                    observed,
                )

    def _clicks(self, share: SeenShare, row: dict[str, Any], observed: Observed) -> None:
        clicks = row.get("clickCount")
        if not isinstance(clicks, int):
            return
        before = share.clicks_seen
        if before is not None and before.ended <= observed.started:
            if clicks < share.clicks:
                self._found(
                    "LINK-CLICK-COUNT",
                    f"share {row.get('id')}'s clickCount went from {share.clicks} to {clicks}",
                    "a click count never goes down",
                    before,
                    observed,
                )
            else:
                self._decided("LINK-CLICK-COUNT")
        if before is None or clicks >= share.clicks:
            share.clicks, share.clicks_seen = clicks, self._keep(observed)

    def _revoked(self, observed: Observed, path: str, project: str | None) -> None:
        matched = _SHARE.match(path)
        assert matched is not None
        render_id, share_id = matched.group("render"), matched.group("share")
        share = self.history.shares.get(share_id)
        won = observed.exchange.status == 200
        if share is None:
            return
        crossing = self.history.crossing(share.project, project)
        if crossing is None and observed.exchange.status == 404:
            self.history.keep_apart(share.project, project)
            crossing = True
        if crossing:
            if won:
                self._found(
                    "ISOLATION-SHARES",
                    f"another project's key revoked share {share_id}",
                    "404 not_found: another project cannot revoke a share",
                    share.shown,
                    observed,
                )
            else:
                self._decided("ISOLATION-SHARES")
            return
        if share.render != render_id:
            if won:
                self._found(
                    "WRONG-PARENT-404",
                    f"share {share_id} of render {share.render} was revoked through {render_id}",
                    "404 not_found: a share is reached through its own render only",
                    share.shown,
                    observed,
                )
            else:
                self._decided("WRONG-PARENT-404")
            return
        first = share.revoked
        if first is not None and share.revoked_by is not None:
            after = share.revoked_by <= observed.started
            by_revoke = first.exchange.method == "DELETE"
            rule_id = "SHARE-REVOKE-ONCE" if after else "SHARE-REVOKE-CONCURRENT"
            if won and (after or by_revoke):
                self._found(
                    rule_id,
                    f"share {share_id} was revoked again after {first.exchange.summary()}: 200",
                    "one revoke wins; any other answers 404 not_found",
                    first,
                    observed,
                )
                return
            if after or by_revoke:
                self._decided(rule_id)
        body = _json(observed)
        if won and isinstance(body, dict):
            self._values(share, body, observed)
            if share.revoked_by is None:
                share.revoked, share.revoked_by = self._keep(observed), observed.ended
                revoked_at = body.get("revokedAt")
                share.revoked_at = revoked_at if isinstance(revoked_at, str) else None

    def _link_opened(self, observed: Observed, path: str, project: str | None) -> None:
        matched = _LINK.match(path)
        if matched is None:
            return
        share_id = self.history.tokens.get(digest(matched.group("token")))
        share = self.history.shares.get(share_id) if share_id else None
        if share is None or share.revoked_by is None or share.revoked_by > observed.started:
            return
        if observed.exchange.status == 404:
            self._decided("LINK-REVOKED-404")
            return
        self._found(
            "LINK-REVOKED-404",
            f"{observed.exchange.method} of a revoked share's link answered "
            f"{observed.exchange.status}",
            "404 at once: a revoked link stops resolving",
            *(o for o in (share.revoked, observed) if o is not None),
        )

    def _engagement_read(self, observed: Observed, path: str, project: str | None) -> None:
        render_id = _RENDER.match(path).group("render")  # type: ignore[union-attr]
        body = _json(observed)
        if not self._owned(observed, render_id, project) or observed.exchange.status != 200:
            return
        counts = body.get("counts") if isinstance(body, dict) else None
        if not isinstance(counts, dict):
            return
        counted = {k: v for k, v in counts.items() if isinstance(v, int)}
        total = body.get("total")
        if isinstance(total, int) and total != sum(counted.values()):
            self._found(
                "ENGAGEMENT-COUNTS",
                f"render {render_id}'s engagement total is {total}, "
                f"its counts add up to {sum(counted.values())}",
                "total: the sum of counts",
                observed,
            )
            return
        before = self.history.engagement.get(render_id)
        if before is not None and before[1].ended <= observed.started:
            fell = sorted(k for k, v in before[0].items() if counted.get(k, 0) < v)
            if fell:
                self._found(
                    "ENGAGEMENT-COUNTS",
                    f"render {render_id}'s {', '.join(fell)} count went down",
                    "counts of events never go down",
                    before[1],
                    observed,
                )
                return
        self._decided("ENGAGEMENT-COUNTS")
        self.history.engagement[render_id] = (counted, self._keep(observed))
