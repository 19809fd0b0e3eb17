"""Clock, names and seeded randomness shared by the demo workspace's services.

Everything here is a pure function of its arguments. Randomness comes from `pair_rng`, seeded with a
string (Python hashes str seeds with SHA-512), so it is identical in every process whatever
PYTHONHASHSEED says. Times are integers (microseconds since the epoch, UTC) until they are rendered.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
from collections.abc import Container
from datetime import UTC, datetime

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US

BASE_US = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) * SECOND_US
"""Start of generation 2's predecessor week: generation g's activity ends at BASE + g weeks."""

HISTORY_WEEKS = 52
"""Generation 1 is the tenant's past: a year of activity up to the end of its week."""

MAX_GENERATION = 1000
MAX_SUBJECTS = 100_000

DOMAIN = "example.com"
EXTERNAL_SENDERS = (
    "alerts@status.example.net",
    "billing@vendor.example.org",
    "news@press.example.net",
    "noreply@travel.example.org",
)
WORDS = (
    "budget", "roadmap", "offsite", "hiring", "launch", "review", "quarterly", "invoice",
    "design", "migration", "incident", "retro", "contract", "forecast", "onboarding", "audit",
    "pricing", "survey", "backlog", "security", "training", "vendor", "release", "metrics",
)  # fmt: skip


def window(generation: int) -> tuple[int, int]:
    """The [start, end) interval in which generation `generation`'s activity happens."""
    end = BASE_US + generation * WEEK_US
    if generation == 1:
        return end - HISTORY_WEEKS * WEEK_US, end
    return end - WEEK_US, end


def rfc3339(us: int, digits: int = 3) -> str:
    """Render microseconds since the epoch as RFC 3339 UTC with `digits` fractional digits and Z."""
    seconds, micros = divmod(us, SECOND_US)
    # time.gmtime + strftime: the same text as datetime's, at a third of the cost (pages of
    # items render thousands of these)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if digits:
        text += "." + f"{micros:06d}"[:digits]
    return text + "Z"


def parse_rfc3339(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 timestamp with an offset, else ValueError."""
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", text):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    head, _, rest = text.partition(".")
    fraction = ""
    if rest:
        fraction = re.match(r"\d+", rest).group()  # type: ignore[union-attr]
        text = head + rest[len(fraction) :]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    micros = int((fraction + "000000")[:6])
    return int(moment.timestamp()) * SECOND_US + micros


def pair_rng(seed: int, service: str, subject: str, generation: int, *extra: str) -> random.Random:
    """The random stream of one pair's generation, independent of every other one."""
    return random.Random("|".join(("sim", str(seed), service, subject, str(generation), *extra)))


def digest(*parts: object, size: int = 16) -> str:
    """A short hex digest of the parts: the base of tokens and fault decisions."""
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=size // 2).hexdigest()


def unit_interval(*parts: object) -> float:
    """A number in [0, 1) that is a pure function of the parts."""
    return int(digest(*parts, size=16), 16) / 2**64


def subject_email(index: int, count: int) -> str:
    """The email of subject `index` (1-based), zero-padded to the width of `count`."""
    return f"user{index:0{len(str(count))}d}@{DOMAIN}"


def subject_emails(count: int) -> list[str]:
    """The roster of a workspace of `count` subjects, already in case-folded order."""
    return [subject_email(i, count) for i in range(1, count + 1)]


def subject_index(email: str, count: int) -> int | None:
    """The 1-based index of `email` in a workspace of `count` subjects, or None if not a subject."""
    width = len(str(count))
    match = re.fullmatch(rf"user(\d{{{width}}})@{re.escape(DOMAIN)}", email.casefold())
    if match is None:
        return None
    index = int(match.group(1))
    return index if 1 <= index <= count else None


def other_subjects(rng: random.Random, subject: str, count: int, k: int) -> list[str]:
    """Up to `k` distinct subjects other than `subject`, chosen by `rng`, sorted."""
    if count <= 1:
        return []
    picks = {subject_email(rng.randint(1, count), count) for _ in range(k)}
    picks.discard(subject)
    return sorted(picks)


def pair_size(rng: random.Random) -> int:
    """Items of one stream at generation 1: mostly 1-4 pages of 25, one stream in ten 6-8 pages."""
    if rng.random() < 0.1:
        return rng.randint(130, 200)
    return rng.randint(3, 80)


def spread(rng: random.Random, n: int, start: int, end: int) -> list[int]:
    """`n` distinct instants in [start, end), ascending, whole milliseconds."""
    slots = (end - start) // 1000
    return sorted(start + 1000 * s for s in rng.sample(range(slots), n))


def spread_micros(rng: random.Random, n: int, start: int, end: int) -> list[int]:
    """`n` distinct instants in [start, end), ascending, with microsecond precision."""
    return sorted(rng.sample(range(start, end), n))


def random_id(rng: random.Random, length: int) -> str:
    """A random identifier of `length` characters from [A-Za-z0-9_-] (Drive's and Chat's ids)."""
    return base64.urlsafe_b64encode(rng.randbytes(length)).decode()[:length]


def phrase(rng: random.Random, words: int) -> str:
    """A few words of plausible office text."""
    return " ".join(rng.choices(WORDS, k=words))


def fresh_id(rng: random.Random, taken: Container[str], make: str) -> str:
    """A new id of the `make` kind ("hex16", "hex26", "drive", "chat") not in `taken`."""
    while True:
        if make == "hex16":
            candidate = f"{rng.getrandbits(64):016x}"
        elif make == "hex26":
            candidate = f"{rng.getrandbits(104):026x}"
        elif make == "drive":
            candidate = "1" + random_id(rng, 32)
        else:
            candidate = random_id(rng, 11)
        if candidate not in taken:
            return candidate
