"""Google Drive in the demo workspace: each subject's My Drive plus one shared drive's files.

Every file remembers the generation and instant of its last change, which is what the changes
feed (`changes.list` from a start page token) reports. From generation 2 each subject gets one
upload that kept its original `modifiedTime` (a file copied in from a laptop): older than the
previous generation's newest file, yet a change of this generation. A sync filtering on
modifiedTime misses it; the changes feed does not.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from sweepledger.collectors.sim.common import (
    HOUR_US,
    fresh_id,
    pair_rng,
    pair_size,
    phrase,
    random_id,
    rfc3339,
    spread,
    window,
)

FOLDER = "application/vnd.google-apps.folder"
MIME_TYPES = (
    "application/vnd.google-apps.document",
    "application/vnd.google-apps.spreadsheet",
    "application/vnd.google-apps.presentation",
    "application/pdf",
    "image/png",
    "text/csv",
)
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "text/csv": ".csv"}


@dataclass(frozen=True, slots=True)
class DriveFile:
    """A file as `files.get` returns it; times in microseconds."""

    id: str
    name: str
    mime_type: str
    modified_time: int
    size: int
    owners: tuple[str, ...]
    parents: tuple[str, ...]
    trashed: bool
    drive_id: str | None
    removed: bool
    """Deleted for good: the changes feed reports `removed: true` and the file is gone."""
    generation: int
    """The generation of the file's last change."""
    changed_at: int
    """When the last change happened (the changes feed's `time`); not always `modified_time`."""

    @property
    def timestamp(self) -> int:
        """The instant `since` and the `last_modified_time` cursor look at."""
        return self.modified_time

    @property
    def gone(self) -> bool:
        """Whether a sync reports the file as a deletion (removed or trashed)."""
        return self.removed or self.trashed

    def fields(self) -> dict[str, Any]:
        """The `drive_files` columns of this file (`drive_id` only for shared-drive files)."""
        fields: dict[str, Any] = {
            "name": self.name,
            "mime_type": self.mime_type,
            "modified_time": rfc3339(self.modified_time),
            "size": self.size,
            "owners": orjson.dumps(list(self.owners)).decode(),
            "parents": orjson.dumps(list(self.parents)).decode(),
            "trashed": int(self.trashed),
        }
        if self.drive_id is not None:
            fields["drive_id"] = self.drive_id
        return fields


@dataclass(frozen=True, slots=True)
class Drive:
    """A subject's files at one generation."""

    files: tuple[DriveFile, ...]
    """Every file ever created, removed and trashed ones included, by id."""
    by_id: Mapping[str, DriveFile]

    def live(self) -> list[DriveFile]:
        """What a full sync lists: files neither trashed nor removed, by id."""
        return [file for file in self.files if not file.gone]

    def changed_after(self, generation: int) -> list[DriveFile]:
        """The changes feed from a token taken at `generation`: by (change time, id)."""
        changed = [file for file in self.files if file.generation > generation]
        return sorted(changed, key=lambda f: (f.changed_at, f.id))


@lru_cache(maxsize=1024)
def build_drive(seed: int, count: int, subject: str, generation: int) -> Drive:
    """The files of `subject` at `generation`, replayed from generation 1 (a pure function)."""
    del count  # drive files are not shared between subjects in the demo
    files: dict[str, DriveFile] = {}
    shared_drive = "0A" + random_id(pair_rng(seed, "drive", subject, 0), 17)
    before = window(1)[1]
    for g in range(1, generation + 1):
        rng = pair_rng(seed, "drive", subject, g)
        if g == 1:
            actions: list[tuple[str, str]] = [("folder", ""), ("folder", "")]
            actions += [("add", "")] * pair_size(rng)
        else:
            existing = [f.id for f in files.values() if not f.gone and f.mime_type != FOLDER]
            actions = _later_actions(rng, existing)
            before = max((f.modified_time for f in files.values() if not f.gone), default=0)
        folders = [f.id for f in files.values() if f.mime_type == FOLDER]
        for (action, file_id), at in zip(
            actions, spread(rng, len(actions), *window(g)), strict=True
        ):
            if action in {"add", "folder", "old_upload"}:
                modified = at
                if action == "old_upload":
                    earliest = window(1)[0]
                    modified = rng.randint(earliest, max(earliest, before - HOUR_US)) // 1000 * 1000
                new = _new_file(
                    rng,
                    subject=subject,
                    shared_drive=shared_drive,
                    folders=folders,
                    files=files,
                    action=action,
                    modified=modified,
                    at=at,
                    generation=g,
                )
                files[new.id] = new
                if new.mime_type == FOLDER:
                    folders.append(new.id)
            elif action == "modify":
                old = files[file_id]
                files[file_id] = replace(
                    old,
                    modified_time=at,
                    size=max(0, old.size + rng.randint(-4_000, 40_000)),
                    generation=g,
                    changed_at=at,
                )
            else:
                removed = rng.random() < 0.5
                files[file_id] = replace(
                    files[file_id],
                    removed=removed,
                    trashed=not removed,
                    generation=g,
                    changed_at=at,
                )
    return Drive(tuple(sorted(files.values(), key=lambda f: f.id)), dict(files))


def _later_actions(rng: random.Random, existing: list[str]) -> list[tuple[str, str]]:
    """A later generation: new files, one upload that kept its old time, edits and deletions."""
    modified = min(rng.randint(1, 3), len(existing))
    deleted = min(rng.randint(0, 2), len(existing) - modified)
    chosen = rng.sample(existing, modified + deleted)
    actions = [("add", "")] * rng.randint(1, 5) + [("old_upload", "")]
    actions += [("modify", f) for f in chosen[:modified]]
    actions += [("delete", f) for f in chosen[modified:]]
    rng.shuffle(actions)
    return actions


def _new_file(
    rng: random.Random,
    *,
    subject: str,
    shared_drive: str,
    folders: list[str],
    files: dict[str, DriveFile],
    action: str,
    modified: int,
    at: int,
    generation: int,
) -> DriveFile:
    """A file (or folder) created at `at` whose modifiedTime is `modified`."""
    mime_type = FOLDER if action == "folder" else rng.choice(MIME_TYPES)
    in_shared_drive = action != "folder" and rng.random() < 0.1
    if in_shared_drive:
        owners: tuple[str, ...] = ()
        parents: tuple[str, ...] = (shared_drive,)
    else:
        owners = (subject,)
        parents = (rng.choice(["root", *folders]),) if action != "folder" else ("root",)
    name = phrase(rng, 2).capitalize() + EXTENSIONS.get(mime_type, "")
    return DriveFile(
        id=fresh_id(rng, files, "drive"),
        name=name,
        mime_type=mime_type,
        modified_time=modified,
        size=0 if mime_type == FOLDER else rng.randint(1_000, 5_000_000),
        owners=owners,
        parents=parents,
        trashed=False,
        drive_id=shared_drive if in_shared_drive else None,
        removed=False,
        generation=generation,
        changed_at=at,
    )
