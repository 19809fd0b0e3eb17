"""Gmail in the demo workspace: one mailbox per subject, its messages and its history records.

Every change to a mailbox gets the next, higher history id, as in Gmail: a message's `history_id` is
the id of the last record that touched it, and the profile's `history_id` is the mailbox's largest.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from sweepledger.collectors.sim.common import (
    EXTERNAL_SENDERS,
    fresh_id,
    other_subjects,
    pair_rng,
    pair_size,
    phrase,
    rfc3339,
    spread,
    window,
)

CATEGORIES = ("CATEGORY_PERSONAL", "CATEGORY_UPDATES", "CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL")
TOGGLED_LABELS = ("UNREAD", "STARRED", "IMPORTANT", "Label_1", "Label_2")
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")


@dataclass(frozen=True, slots=True)
class GmailMessage:
    """A message as `messages.get` returns it (format=metadata), times in microseconds."""

    id: str
    thread_id: str
    history_id: int
    internal_date: int
    subject: str
    sender: str
    recipients: tuple[str, ...]
    labels: tuple[str, ...]
    size_estimate: int
    snippet: str

    @property
    def timestamp(self) -> int:
        """The instant `since` and the listing order look at."""
        return self.internal_date

    def fields(self) -> dict[str, Any]:
        """The `gmail_messages` columns of this message."""
        return {
            "thread_id": self.thread_id,
            "history_id": self.history_id,
            "internal_date": rfc3339(self.internal_date),
            "subject": self.subject,
            "sender": self.sender,
            "recipients": orjson.dumps(list(self.recipients)).decode(),
            "labels": orjson.dumps(sorted(self.labels)).decode(),
            "size_estimate": self.size_estimate,
            "snippet": self.snippet,
        }


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One entry of `users.history.list`: `type` is one of HISTORY_TYPES."""

    id: int
    type: str
    message_id: str
    thread_id: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A subject's mailbox at one generation."""

    messages: tuple[GmailMessage, ...]
    """Live messages, newest first (Gmail's `messages.list` order)."""
    by_id: Mapping[str, GmailMessage]
    history: tuple[HistoryRecord, ...]
    """Every record since the mailbox was created, ascending id."""
    history_id: int
    """The profile's current historyId."""

    def history_after(self, start: int) -> tuple[HistoryRecord, ...]:
        """Records with an id greater than `start`, ascending (what history.list returns)."""
        return self.history[bisect.bisect_right(self.history, start, key=lambda r: r.id) :]

    def changed_after(self, start: int) -> list[tuple[str, GmailMessage | None]]:
        """Each message touched after `start`, once, by its last record; None for a deleted one."""
        last: dict[str, int] = {}
        for record in self.history_after(start):
            last.pop(record.message_id, None)
            last[record.message_id] = record.id
        return [(message_id, self.by_id.get(message_id)) for message_id in last]


@lru_cache(maxsize=1024)
def build_mailbox(seed: int, count: int, subject: str, generation: int) -> Mailbox:
    """The mailbox of `subject` at `generation`, replayed from generation 1 (a pure function)."""
    live: dict[str, GmailMessage] = {}
    history: list[HistoryRecord] = []
    history_id = pair_rng(seed, "gmail", subject, 0).randint(1_000, 90_000)
    for g in range(1, generation + 1):
        rng = pair_rng(seed, "gmail", subject, g)
        if g == 1:
            actions: list[tuple[str, str]] = [("add", "")] * pair_size(rng)
        else:
            actions = _later_actions(rng, list(live))
        for (action, message_id), at in zip(
            actions, spread(rng, len(actions), *window(g)), strict=True
        ):
            history_id += rng.randint(1, 5)
            if action == "add":
                message = _new_message(
                    rng, count=count, subject=subject, live=live, at=at, history_id=history_id
                )
                live[message.id] = message
                history.append(
                    HistoryRecord(history_id, "messageAdded", message.id, message.thread_id)
                )
            elif action == "label":
                live[message_id], record = _toggle_label(rng, live[message_id], history_id)
                history.append(record)
            else:
                gone = live.pop(message_id)
                history.append(HistoryRecord(history_id, "messageDeleted", gone.id, gone.thread_id))
    newest_first = sorted(live.values(), key=lambda m: (m.internal_date, m.id), reverse=True)
    return Mailbox(tuple(newest_first), dict(live), tuple(history), history_id)


def _later_actions(rng: random.Random, existing: list[str]) -> list[tuple[str, str]]:
    """A later generation: a few new messages, label changes and deletions, in random order."""
    relabelled = min(rng.randint(1, 3), len(existing))
    deleted = min(rng.randint(0, 2), len(existing) - relabelled)
    chosen = rng.sample(existing, relabelled + deleted)
    actions = [("add", "")] * rng.randint(1, 8)
    actions += [("label", m) for m in chosen[:relabelled]]
    actions += [("delete", m) for m in chosen[relabelled:]]
    rng.shuffle(actions)
    return actions


def _new_message(
    rng: random.Random,
    *,
    count: int,
    subject: str,
    live: dict[str, GmailMessage],
    at: int,
    history_id: int,
) -> GmailMessage:
    """A message received (or, one in four, sent by the subject) at `at`."""
    message_id = fresh_id(rng, live, "hex16")
    title = phrase(rng, 3).capitalize()
    thread_id = message_id
    if live and rng.random() < 0.3:
        earlier = live[rng.choice(list(live))]
        thread_id, title = earlier.thread_id, "Re: " + earlier.subject.removeprefix("Re: ")
    colleagues = other_subjects(rng, subject, count, 3)
    if rng.random() < 0.25:
        sender, recipients, labels = subject, colleagues or [subject], ["SENT"]
    else:
        sender = rng.choice([*colleagues, *EXTERNAL_SENDERS])
        recipients = [subject, *colleagues[:1]]
        labels = ["INBOX", rng.choice(CATEGORIES)]
        labels += [label for label, p in (("UNREAD", 0.4), ("IMPORTANT", 0.2)) if rng.random() < p]
    return GmailMessage(
        id=message_id,
        thread_id=thread_id,
        history_id=history_id,
        internal_date=at,
        subject=title,
        sender=sender,
        recipients=tuple(dict.fromkeys(recipients)),
        labels=tuple(sorted(labels)),
        size_estimate=rng.randint(1_200, 250_000),
        snippet=phrase(rng, 8),
    )


def _toggle_label(
    rng: random.Random, message: GmailMessage, history_id: int
) -> tuple[GmailMessage, HistoryRecord]:
    """Add or remove one label, as a user starring or reading a message does."""
    label = rng.choice(TOGGLED_LABELS)
    if label in message.labels:
        labels, kind = tuple(x for x in message.labels if x != label), "labelRemoved"
    else:
        labels, kind = tuple(sorted((*message.labels, label))), "labelAdded"
    changed = replace(message, labels=labels, history_id=history_id)
    return changed, HistoryRecord(history_id, kind, message.id, message.thread_id, (label,))
