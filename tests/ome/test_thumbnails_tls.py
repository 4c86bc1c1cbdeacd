"""Thumbnails over https are trusted as the server's API is: its ``ca_file`` (and
``verify_tls``) apply to the thumbnail URL too, since both are the same OME host."""

from __future__ import annotations

from dataclasses import replace

from omealert.clock import FakeClock
from omealert.simulator import Simulator
from tests.test_security import Pki, pki

from ..helpers import rule
from .test_thumbnails import S1, TOKEN, polls, spec_for

__all__ = ["pki"]  # the throw-away CA fixture, used here as is


def test_the_servers_ca_file_trusts_its_thumbnails(pki: Pki) -> None:
    """A simulator with a throw-away CA serves API and thumbnails over https: with the
    server's ``ca_file`` the thumbnail is read (it was refused when only the system's CAs
    were tried for thumbnails)."""
    clock = FakeClock(1_000_000.0)
    with Simulator(clock=clock.now, access_token=TOKEN, tls=pki.server) as sim:
        sim.add_stream("default", "app", "s1")
        rules = [rule("f", "picture.frozen_for > 30s")]
        trusted = replace(spec_for(sim.url, sim.url, every_s=5.0), ca_file=str(pki.ca))
        got = polls(trusted, clock, rules, 3)
        assert "picture.luma" in got[-1].samples[S1].fields
