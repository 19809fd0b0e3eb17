"""The demo workspace as data: what exists at a generation, with ids, history ids, times and feeds.

A `Workspace` is a pure function of (subjects, seed, generation): two instances with the same
three values hold the same data in any process, and generation g is the same whether or not anyone
looked at g-1. It knows nothing of page sizes, page tokens or faults; those belong to whoever serves
it (the `sim://` source pages it, an HTTP emulator can serve it in Google's REST shapes).

Generation 1 is a year of history ending at 2026-01-12; every later generation g is one week
(2026-01-05 + (g-1) weeks .. + g weeks) in which every pair gets new items and a few are changed or
deleted. Nothing happens after the end of the current generation's week.

Cursors are Google's: Gmail's integer `historyId`, Calendar's opaque `syncToken` and Drive's
opaque start page token (both encode the generation they were taken at and are bound to the
subject), Chat's `create_time`. A cursor this workspace cannot honour raises `CursorExpired`, which
is what Gmail's 404 and Calendar's 410 mean; an unknown subject or space raises `NotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweepledger.collectors.errors import CursorExpired, NotFound
from sweepledger.collectors.sim.calendar_data import Calendar, CalendarEvent, build_calendar
from sweepledger.collectors.sim.chat_data import ChatData, ChatMessage, ChatSpace, build_chat
from sweepledger.collectors.sim.common import (
    MAX_GENERATION,
    MAX_SUBJECTS,
    digest,
    subject_emails,
    subject_index,
    window,
)
from sweepledger.collectors.sim.drive_data import Drive, DriveFile, build_drive
from sweepledger.collectors.sim.gmail_data import (
    GmailMessage,
    HistoryRecord,
    Mailbox,
    build_mailbox,
)

__all__ = [
    "CalendarEvent",
    "ChatMessage",
    "DriveFile",
    "GmailMessage",
    "HistoryRecord",
    "Workspace",
]


@dataclass(frozen=True, slots=True)
class Workspace:
    """A deterministic Google-Workspace-like tenant: `subjects` users, at `generation`."""

    subjects: int = 20
    seed: int = 1
    generation: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.subjects <= MAX_SUBJECTS:
            raise ValueError(f"subjects must be between 1 and {MAX_SUBJECTS}, not {self.subjects}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed}")
        if not 1 <= self.generation <= MAX_GENERATION:
            raise ValueError(
                f"generation must be between 1 and {MAX_GENERATION}, not {self.generation}"
            )

    # -- the tenant ---------------------------------------------------------------------------

    def roster(self) -> list[str]:
        """Every subject's email, `user01@example.com` ..., sorted case-folded."""
        return subject_emails(self.subjects)

    def is_subject(self, email: str) -> bool:
        """Whether `email` is a subject of this workspace."""
        return subject_index(email, self.subjects) is not None

    def window(self) -> tuple[int, int]:
        """The current generation's [start, end) in microseconds: no activity after `end`."""
        return window(self.generation)

    # -- gmail ---------------------------------------------------------------------------------

    def mailbox(self, subject: str) -> Mailbox:
        """The subject's mailbox (messages newest first, full history)."""
        return build_mailbox(self.seed, self.subjects, self._subject(subject), self.generation)

    def gmail_profile_history_id(self, subject: str) -> int:
        """`users.getProfile().historyId`: the mailbox's latest history id."""
        return self.mailbox(subject).history_id

    def gmail_messages(self, subject: str) -> tuple[GmailMessage, ...]:
        """`messages.list` in full: live messages, newest first."""
        return self.mailbox(subject).messages

    def gmail_message(self, subject: str, message_id: str) -> GmailMessage | None:
        """`messages.get`: the message, or None where Gmail answers 404 (deleted or unknown)."""
        return self.mailbox(subject).by_id.get(message_id)

    def gmail_history(self, subject: str, start_history_id: int) -> tuple[HistoryRecord, ...]:
        """`history.list(startHistoryId)`: every record with a higher id, ascending."""
        return self.mailbox(subject).history_after(self._history_start(subject, start_history_id))

    def gmail_changes(
        self, subject: str, start_history_id: int
    ) -> list[tuple[str, GmailMessage | None]]:
        """Messages touched after `start_history_id`, once each by last change; None = deleted."""
        start = self._history_start(subject, start_history_id)
        return self.mailbox(subject).changed_after(start)

    # -- calendar ------------------------------------------------------------------------------

    def calendar(self, subject: str) -> Calendar:
        """The subject's primary calendar, cancelled events included."""
        return build_calendar(self.seed, self.subjects, self._subject(subject), self.generation)

    def calendar_events(self, subject: str) -> list[CalendarEvent]:
        """`events.list` full sync: events not cancelled, by (updated, id)."""
        return self.calendar(subject).live()

    def calendar_event(self, subject: str, event_id: str) -> CalendarEvent | None:
        """`events.get`: the event (possibly cancelled), or None if it never existed."""
        return self.calendar(subject).by_id.get(event_id)

    def calendar_sync_token(self, subject: str) -> str:
        """The `nextSyncToken` a full or incremental sync ends with at this generation."""
        return self._generation_token("calendar", self._subject(subject), self.generation)

    def calendar_changes(self, subject: str, sync_token: str) -> list[CalendarEvent]:
        """`events.list(syncToken)`: events changed since the token, cancelled ones included."""
        taken_at = self._token_generation("calendar", subject, sync_token, "syncToken")
        return self.calendar(subject).changed_after(taken_at)

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, subject: str) -> ChatData:
        """The subject's spaces and their messages."""
        return build_chat(self.seed, self.subjects, self._subject(subject), self.generation)

    def chat_spaces(self, subject: str) -> list[str]:
        """`spaces.list`: the subject's space names (`spaces/...`), sorted."""
        return [space.name for space in self.chat(subject).spaces]

    def chat_messages(
        self, subject: str, space: str, since: int | None = None
    ) -> tuple[ChatMessage, ...]:
        """`spaces.messages.list`: by create_time ascending; `since` keeps create_time >= it."""
        found = self._space(subject, space)
        return found.messages if since is None else found.since(since)

    def chat_message(self, subject: str, space: str, name: str) -> ChatMessage | None:
        """`spaces.messages.get`: the message, or None if the space holds no such message."""
        return self._space(subject, space).by_name.get(name)

    # -- drive ---------------------------------------------------------------------------------

    def drive(self, subject: str) -> Drive:
        """The subject's files, removed and trashed ones included."""
        return build_drive(self.seed, self.subjects, self._subject(subject), self.generation)

    def drive_files(self, subject: str) -> list[DriveFile]:
        """`files.list`: files neither trashed nor removed, by id."""
        return self.drive(subject).live()

    def drive_file(self, subject: str, file_id: str) -> DriveFile | None:
        """`files.get`: the file (possibly trashed), or None if removed or unknown."""
        found = self.drive(subject).by_id.get(file_id)
        return None if found is None or found.removed else found

    def drive_start_page_token(self, subject: str) -> str:
        """`changes.getStartPageToken` at this generation."""
        return self._generation_token("drive", self._subject(subject), self.generation)

    def drive_changes(self, subject: str, page_token: str) -> list[DriveFile]:
        """`changes.list(pageToken)`: every file added, changed, trashed or removed since."""
        taken_at = self._token_generation("drive", subject, page_token, "start page token")
        return self.drive(subject).changed_after(taken_at)

    # -- helpers -------------------------------------------------------------------------------

    def _subject(self, email: str) -> str:
        """The canonical (case-folded) email of a subject; NotFound for anyone else."""
        if subject_index(email, self.subjects) is None:
            raise NotFound(f"{email} is not a subject of this workspace")
        return email.casefold()

    def _space(self, subject: str, space: str) -> ChatSpace:
        found = self.chat(subject).by_name.get(space)
        if found is None:
            raise NotFound(f"{subject} is not a member of {space}")
        return found

    def _history_start(self, subject: str, start_history_id: int) -> int:
        """Gmail answers 404 for a history id it cannot continue from; so does the demo."""
        current = self.gmail_profile_history_id(subject)
        if not 0 <= start_history_id <= current:
            raise CursorExpired(
                f"gmail historyId {start_history_id} of {subject} is not in this mailbox's history "
                f"(current {current})"
            )
        return start_history_id

    def _generation_token(self, kind: str, subject: str, generation: int) -> str:
        """An opaque token that says which generation it was taken at and whose it is."""
        return f"{generation}~{digest(self.seed, self.subjects, kind, subject, generation)}"

    def _token_generation(self, kind: str, subject: str, token: str, what: str) -> int:
        """The generation a token of ours was taken at; CursorExpired for anything else."""
        head, _, _ = token.partition("~")
        subject = self._subject(subject)
        if head.isdigit() and token == self._generation_token(kind, subject, int(head)):
            taken_at = int(head)
            if taken_at <= self.generation:
                return taken_at
            raise CursorExpired(
                f"{kind} {what} of {subject} was taken at generation {taken_at}, "
                f"after this workspace's generation {self.generation}"
            )
        raise CursorExpired(f"{kind} {what} {token!r} was not issued for {subject}")
