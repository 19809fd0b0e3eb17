"""Open a source from its URL: `sim://` is the demo workspace, `google://` Google Workspace.

Each source's package is imported only for its own scheme, so the demo workspace needs none of the
`google` extra's packages.
"""

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
        try:
            from sweepledger.collectors.google.source import GoogleSource
        except ImportError as missing:
            raise SourceConfigError(
                f"google:// needs the google extra ({missing.name} is not installed): "
                "pip install 'sweepledger[google]'"
            ) from None
        return GoogleSource(url)
    raise SourceConfigError(
        f"unknown source scheme {scheme + '://' if scheme else '(none)'} in {url!r}; "
        f"expected sim:// or google://"
    )
