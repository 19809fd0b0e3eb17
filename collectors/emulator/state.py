"""The workspace an emulator serves right now, and what every API handler needs from it.

The served `sim://` URL can be replaced while the emulator runs (`POST /_emulator/workspace`):
that is how a test moves the tenant to `generation=2` between two sweeps, with the same key,
tokens and port. A handler takes one `View` at its start, so a switch never mixes two
generations inside one answer; page tokens are bound to the generation, so a listing that spans
a switch is told to start again (400 on its token), as a snapshot-based service would.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sweepledger.collectors.emulator.dispatch import ApiError, Call
from sweepledger.collectors.emulator.faults import inject
from sweepledger.collectors.sim.common import digest
from sweepledger.collectors.sim.config import SimConfig
from sweepledger.collectors.sim.faults import FaultPlan
from sweepledger.collectors.sim.workspace import Workspace


@dataclass(frozen=True, slots=True)
class View:
    """One generation of the served workspace, with its fault plan."""

    config: SimConfig
    workspace: Workspace
    faults: FaultPlan

    @classmethod
    def of(cls, url: str) -> View:
        config = SimConfig.from_url(url)
        return cls(
            config, Workspace(config.subjects, config.seed, config.generation), FaultPlan(config)
        )

    def inject(
        self,
        call: Call,
        service: str,
        *,
        unit: str | None = None,
        cursor: Mapping[str, str] | None = None,
        page_token: str | None = None,
        item_id: str | None = None,
        expired: ApiError | None = None,
    ) -> None:
        """Raise the fault this call draws from the workspace's plan (see `faults`)."""
        inject(
            self.faults,
            self.config.seed,
            route=call.route.name,
            service=service,
            subject=call.subject,
            query=call.query,
            unit=unit,
            cursor=cursor,
            page_token=page_token,
            item_id=item_id,
            expired=expired,
        )


class EmulatorState:
    """The served workspace (replaceable), the admin and the users' Directory ids."""

    def __init__(self, url: str, admin: str) -> None:
        self.admin = admin.casefold()
        self._lock = threading.Lock()
        self._view = View.of(url)

    def view(self) -> View:
        with self._lock:
            return self._view

    def switch(self, url: str) -> View:
        """Serve another `sim://` workspace from now on (SourceConfigError if the URL is bad)."""
        view = View.of(url)
        with self._lock:
            self._view = view
        return view

    def latency(self) -> float:
        return self.view().config.latency_ms / 1000

    def is_user(self, email: str) -> bool:
        """Whether a token may be issued for `email`: a user of the workspace, or the admin."""
        return email.casefold() == self.admin or self.view().workspace.is_subject(email)

    def own_data(
        self, call: Call, requested: str, view: View, *, me: Sequence[str] = ("me",)
    ) -> str:
        """The user whose data `requested` names (`me` = the token's subject), who must be the
        token's subject (impersonation) and a user of the workspace; else 403 / 404."""
        subject = call.subject
        if requested not in me and requested.casefold() != subject:
            raise ApiError(
                403,
                f"Delegation denied for {subject}: the token may read only "
                f"its own subject's data, not {requested}",
                "forbidden",
            )
        if not view.workspace.is_subject(subject):
            raise ApiError(404, f"No data for {subject}: not a user of this workspace", "notFound")
        return subject


def user_id(seed: int, email: str) -> str:
    """A user's stable numeric Directory (and Chat `users/{id}`) id."""
    return "1" + str(int(digest("user-id", seed, email.casefold(), size=16), 16)).zfill(20)[:20]


def display_name(email: str) -> str:
    """`user07@example.com` -> `User 07`."""
    local = email.split("@", maxsplit=1)[0]
    head = local.rstrip("0123456789")
    return f"{head.capitalize()} {local[len(head) :]}".strip()
