"""Google Chat in the demo workspace: each subject is a member of 1-4 spaces of its own.

Spaces are fixed at generation 1; later generations only post new messages (every generation posts
at least one in the subject's first space). Messages are ordered by `create_time`, which has
microsecond precision as in the Chat API; an incremental read asks for `create_time >= cursor`.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sweepledger.collectors.sim.common import (
    other_subjects,
    pair_rng,
    phrase,
    random_id,
    rfc3339,
    spread_micros,
    window,
)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message of a space; `name` is `spaces/<space>/messages/<id>`, times in microseconds."""

    name: str
    space: str
    create_time: int
    sender: str
    text: str
    thread: str

    @property
    def id(self) -> str:
        """The item id: the message's resource name, unique across spaces."""
        return self.name

    @property
    def timestamp(self) -> int:
        """The instant `since`, the order and the cursor look at."""
        return self.create_time

    def fields(self) -> dict[str, Any]:
        """The `chat_messages` columns of this message."""
        return {
            "space": self.space,
            "create_time": rfc3339(self.create_time, digits=6),
            "sender": self.sender,
            "text": self.text,
            "thread": self.thread,
        }


@dataclass(frozen=True, slots=True)
class ChatSpace:
    """A space and its messages at one generation, by (create_time, name)."""

    name: str
    members: tuple[str, ...]
    messages: tuple[ChatMessage, ...]
    by_name: Mapping[str, ChatMessage]

    def since(self, create_time: int) -> tuple[ChatMessage, ...]:
        """Messages with create_time >= `create_time` (inclusive, as the Chat API filter)."""
        start = bisect.bisect_left(self.messages, create_time, key=lambda m: m.create_time)
        return self.messages[start:]


@dataclass(frozen=True, slots=True)
class ChatData:
    """A subject's spaces at one generation, sorted by name."""

    spaces: tuple[ChatSpace, ...]
    by_name: Mapping[str, ChatSpace]


@lru_cache(maxsize=1024)
def build_chat(seed: int, count: int, subject: str, generation: int) -> ChatData:
    """The spaces of `subject` at `generation`, replayed from generation 1 (a pure function)."""
    rng = pair_rng(seed, "chat", subject, 1)
    names = sorted({"spaces/AAAA" + random_id(rng, 7) for _ in range(rng.randint(1, 4))})
    members = {name: (subject, *other_subjects(rng, subject, count, 4)) for name in names}
    posted: dict[str, list[ChatMessage]] = {name: [] for name in names}
    taken: set[str] = set()
    for g in range(1, generation + 1):
        rng = pair_rng(seed, "chat", subject, g, "messages")
        for index, name in enumerate(names):
            if g == 1:
                count_new = rng.randint(2, 40)
            else:
                count_new = rng.randint(1, 4) if index == 0 else rng.randint(0, 3)
            for at in spread_micros(rng, count_new, *window(g)):
                posted[name].append(
                    _new_message(
                        rng,
                        space=name,
                        members=members[name],
                        earlier=posted[name],
                        at=at,
                        taken=taken,
                    )
                )
    spaces = []
    for name in names:
        messages = tuple(sorted(posted[name], key=lambda m: (m.create_time, m.name)))
        spaces.append(ChatSpace(name, members[name], messages, {m.name: m for m in messages}))
    return ChatData(tuple(spaces), {space.name: space for space in spaces})


def _new_message(
    rng: random.Random,
    *,
    space: str,
    members: tuple[str, ...],
    earlier: list[ChatMessage],
    at: int,
    taken: set[str],
) -> ChatMessage:
    """A message posted at `at` by a member, in a new thread or (one in three) an earlier one."""
    name = f"{space}/messages/{random_id(rng, 11)}.{random_id(rng, 11)}"
    while name in taken:
        name = f"{space}/messages/{random_id(rng, 11)}.{random_id(rng, 11)}"
    taken.add(name)
    if earlier and rng.random() < 0.33:
        thread = rng.choice(earlier).thread
    else:
        thread = f"{space}/threads/{random_id(rng, 11)}"
    return ChatMessage(name, space, at, rng.choice(members), phrase(rng, 6).capitalize(), thread)
