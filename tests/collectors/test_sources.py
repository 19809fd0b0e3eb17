"""`open_source`: a source URL's scheme picks the source; anything else is a clear refusal."""

from __future__ import annotations

import pytest

from sweepledger.collectors.errors import SourceConfigError
from sweepledger.collectors.protocol import FetchRequest
from sweepledger.collectors.sim.source import SimSource
from sweepledger.collectors.sources import open_source


def test_sim_url_opens_the_demo_workspace() -> None:
    """sim:// opens a SimSource whose url is canonical and which serves pages."""
    source = open_source("SIM://?seed=1&subjects=2")
    assert isinstance(source, SimSource)
    assert source.url == "sim://?subjects=2"
    assert source.roster() == ["user1@example.com", "user2@example.com"]
    assert source.fetch(FetchRequest("gmail", "user1@example.com", None, {}, None)).items
    source.close()


def test_malformed_google_url_is_refused_with_its_shape() -> None:
    """google:// takes only query parameters; a host is refused with the expected shape."""
    with pytest.raises(SourceConfigError, match=r"google://\?credentials=KEY.json&admin="):
        open_source("google://example.com")


@pytest.mark.parametrize("url", ["http://example.com", "", "sweep.db", "file:///tmp/x"])
def test_unknown_schemes_are_refused(url: str) -> None:
    """Any other URL names itself and the schemes that exist."""
    with pytest.raises(
        SourceConfigError, match=r"unknown source scheme .*expected sim:// or google://"
    ):
        open_source(url)


def test_sim_parameter_errors_pass_through() -> None:
    """A bad sim:// parameter reaches the caller as the SimSource's one-line SourceConfigError."""
    with pytest.raises(SourceConfigError, match="unknown sim:// parameter 'subject'"):
        open_source("sim://?subject=3")
