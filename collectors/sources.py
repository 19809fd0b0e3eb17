"""Open a source from its URL: `sim://` is the demo workspace; `google://` is not available yet."""

from __future__ import annotations

from urllib.parse import urlsplit

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.protocol import Source


def open_source(url: str) -> Source:
    """The Source a URL names; SourceConfigError (one clear sentence) for anything else."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sim":
        from sweepledger.collectors.sim.source import SimSource

        return SimSource(url)
    if scheme == "google":
        raise SourceConfigError(
            f"google:// sources are not available yet ({url!r}); use sim:// (the demo workspace)"
        )
    raise SourceConfigError(
        f"unknown source scheme {scheme + '://' if scheme else '(none)'} in {url!r}; "
        f"expected sim:// or google://"
    )
