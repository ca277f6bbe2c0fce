"""The rules shares and links show: one revoke wins, links stop, lists, values, counts.

Each check reads one answer against what the history has shown of the share so far, and
tells the verdicts what it decided.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from conformance.passive.history import History, SeenShare, digest
from conformance.passive.renders import RenderChecks, render_of
from conformance.passive.traffic import Observed
from conformance.passive.verdicts import Verdicts, instant, json_of

CLOCK_SKEW = timedelta(seconds=2)
"""How far two of a deployment's servers' clocks may differ: a stamp this little past an
expiry proves nothing of the server that answers the link."""
_SHARE = re.compile(r"^/v1/renders/(?P<render>[^/]+)/shares/(?P<share>[^/]+)$")
_LINK = re.compile(r"^/share/(?P<token>[^/]+)(?:/download)?$")
_COMPARED = ("createdAt", "expiresAt", "channel", "shareToken", "shareUrl")
_SECRET_VALUES = ("shareToken", "shareUrl")


class ShareChecks:
    """The checks of the share operations and of the links they make."""

    def __init__(self, history: History, verdicts: Verdicts, renders: RenderChecks) -> None:
        self._history = history
        self._verdicts = verdicts
        self._renders = renders

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
            self._verdicts.decided("VALUES-AGREE")
            if share.values[name] != value:
                secret = name in _SECRET_VALUES
                was, shown = ("one value", "another") if secret else (share.values[name], value)
                self._verdicts.found(
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
                self._verdicts.found(
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
                    self._verdicts.keep(observed),
                    observed.ended,
                )

    def _made(self, observed: Observed, path: str, project: str | None, rule_id: str) -> None:
        render_id = render_of(path)
        if not self._renders.not_ready(rule_id, observed, render_id, project):
            return
        body = json_of(observed)
        if observed.exchange.status != 201 or not isinstance(body, dict) or "id" not in body:
            return
        share = SeenShare(project, render_id, self._verdicts.keep(observed))
        self._history.add_share(str(body["id"]), share)
        if isinstance(body.get("shareToken"), str):
            self._history.tokens[digest(body["shareToken"])] = str(body["id"])
        self._values(share, body, observed)
        self._time_seen(project, body.get("createdAt"), observed)

    def shared(self, observed: Observed, path: str, project: str | None) -> None:
        """A share created: never ``not_ready`` once seen succeeded; remembered."""
        self._made(observed, path, project, "SHARE-NOT-READY")

    def emailed(self, observed: Observed, path: str, project: str | None) -> None:
        """A render emailed: as a share created, under the email rule."""
        self._made(observed, path, project, "EMAIL-NOT-READY")

    def listed(self, observed: Observed, path: str, project: str | None) -> None:
        """A list of a render's shares: order, contents, values and counts."""
        render_id = render_of(path)
        body = json_of(observed)
        if not self._renders.owned(observed, render_id, project) or observed.exchange.status != 200:
            return
        rows = body.get("shares") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return
        rows = [row for row in rows if isinstance(row, dict)]
        created = [str(row.get("createdAt")) for row in rows]
        if len(rows) >= 2:
            if created != sorted(created, reverse=True):
                self._verdicts.found(
                    "SHARE-LIST-ORDER",
                    f"the list of render {render_id} is not newest first",
                    "shares by createdAt, newest first",
                    observed,
                )
            else:
                self._verdicts.decided("SHARE-LIST-ORDER")
        listed = {str(row.get("id")) for row in rows}
        for row in rows:
            share = self._history.shares.get(str(row.get("id")))
            if share is None:
                continue
            if share.render != render_id:
                self._verdicts.found(
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
        for share_id, share in self._history.shares_of(render_id):
            if share.project != project:
                continue
            if share.shown.ended > observed.started or share.values.get("expiresAt") is not None:
                continue  # made meanwhile, or one that may have expired (notes B.4)
            if share_id in listed:
                self._verdicts.decided("SHARE-LIST-OWN-RENDER")
            else:
                self._verdicts.found(
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
                self._verdicts.found(
                    "LINK-CLICK-COUNT",
                    f"share {row.get('id')}'s clickCount went from {share.clicks} to {clicks}",
                    "a click count never goes down",
                    before,
                    observed,
                )
            else:
                self._verdicts.decided("LINK-CLICK-COUNT")
        if before is None or clicks >= share.clicks:
            share.clicks, share.clicks_seen = clicks, self._verdicts.keep(observed)

    def revoked(self, observed: Observed, path: str, project: str | None) -> None:
        """A revoke: one wins, through its own render, with its own project's key."""
        matched = _SHARE.match(path)
        assert matched is not None
        render_id, share_id = matched.group("render"), matched.group("share")
        share = self._history.shares.get(share_id)
        won = observed.exchange.status == 200
        if share is None:
            return
        crossing = self._history.crossing(share.project, project)
        if crossing is None and observed.exchange.status == 404:
            self._history.keep_apart(share.project, project)
            crossing = True
        if crossing:
            if won:
                self._verdicts.found(
                    "ISOLATION-SHARES",
                    f"another project's key revoked share {share_id}",
                    "404 not_found: another project cannot revoke a share",
                    share.shown,
                    observed,
                )
            else:
                self._verdicts.decided("ISOLATION-SHARES")
            return
        if share.render != render_id:
            if won:
                self._verdicts.found(
                    "WRONG-PARENT-404",
                    f"share {share_id} of render {share.render} was revoked through {render_id}",
                    "404 not_found: a share is reached through its own render only",
                    share.shown,
                    observed,
                )
            else:
                self._verdicts.decided("WRONG-PARENT-404")
            return
        first = share.revoked
        if first is not None and share.revoked_by is not None:
            after = share.revoked_by <= observed.started
            by_revoke = first.exchange.method == "DELETE"
            rule_id = "SHARE-REVOKE-ONCE" if after else "SHARE-REVOKE-CONCURRENT"
            if won and (after or by_revoke):
                self._verdicts.found(
                    rule_id,
                    f"share {share_id} was revoked again after {first.exchange.summary()}: 200",
                    "one revoke wins; any other answers 404 not_found",
                    first,
                    observed,
                )
                return
            if after or by_revoke:
                self._verdicts.decided(rule_id)
        body = json_of(observed)
        if won and isinstance(body, dict):
            self._values(share, body, observed)
            self._time_seen(project, body.get("revokedAt"), observed)
            if share.revoked_by is None:
                share.revoked, share.revoked_by = self._verdicts.keep(observed), observed.ended
                revoked_at = body.get("revokedAt")
                share.revoked_at = revoked_at if isinstance(revoked_at, str) else None

    def link_opened(self, observed: Observed, path: str, project: str | None) -> None:
        """A link opened: 404 once its share was seen revoked or expired."""
        matched = _LINK.match(path)
        if matched is None:
            return
        share_id = self._history.tokens.get(digest(matched.group("token")))
        share = self._history.shares.get(share_id) if share_id else None
        if share is None:
            return
        if share.revoked_by is None or share.revoked_by > observed.started:
            self._expired_link(observed, share)
            return
        self._stopped(
            "LINK-REVOKED-404",
            observed,
            f"{observed.exchange.method} of a revoked share's link answered "
            f"{observed.exchange.status}",
            "404 at once: a revoked link stops resolving",
            *(o for o in (share.revoked,) if o is not None),
        )

    def _stopped(
        self, rule_id: str, observed: Observed, title: str, expected: str, *before: Observed
    ) -> None:
        """A link that must no longer resolve: a 404 holds the rule, anything else breaks it."""
        if observed.exchange.status == 404:
            self._verdicts.decided(rule_id)
        else:
            self._verdicts.found(rule_id, title, expected, *before, observed)

    def _time_seen(self, project: str | None, stamped: object, observed: Observed) -> None:
        """An instant the API stamped for the project: its time has reached it at least."""
        stamp = instant(stamped)
        if stamp is None:
            return
        seen = self._history.clock.get(project)
        if seen is None or stamp > seen[0]:
            self._history.clock[project] = (stamp, self._verdicts.keep(observed))

    def _expired_link(self, observed: Observed, share: SeenShare) -> None:
        """A link whose expiresAt an earlier answer's stamp had passed must be 404.

        Only the API's own stamps tell its time (a project's clock on the mock is not the
        wall clock, and ``Date`` is to the second); setting a clock forgets them.
        """
        expires = instant(share.values.get("expiresAt"))
        seen = self._history.clock.get(share.project)
        if expires is None or seen is None or seen[1].ended > observed.started:
            return
        if seen[0] <= expires + CLOCK_SKEW:
            return
        self._stopped(
            "LINK-EXPIRED-404",
            observed,
            f"{observed.exchange.method} of a link that expired at "
            f"{share.values.get('expiresAt')} answered {observed.exchange.status}, after an "
            f"answer stamped {seen[0].isoformat()}",
            "404 once a share's expiresAt has passed",
            share.shown,
            seen[1],
        )
