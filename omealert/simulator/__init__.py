"""A built-in OvenMediaEngine simulator: an HTTP/1.1 server on loopback speaking OME's REST API.

omealert's tests, its ``demo`` command and its benchmarks need an OME that can be told to
misbehave on cue (stalled encoders, token rotation, proxies returning HTML, restarts) and
whose clock can be driven by hand.  The byte-level behaviour follows ``ome-api.md``: the
``{"message","response","statusCode"}`` envelope printed compact with sorted keys, the
401/404 texts, auth before routing, HEAD wherever GET is, times printed in the server's
own offset with truncated milliseconds, and stream-info bitrates as JSON strings.

It deliberately imports nothing from the rest of omealert, so a misunderstanding of the
API in the client cannot be mirrored here and hide itself.  Keep it that way: every module
of this package imports only the standard library and its siblings.

Run ``python -m omealert.simulator --port 8081 --streams 100`` for a stand-alone server;
``POST /_sim/<method>`` with a JSON object of keyword arguments scripts it from elsewhere.

The modules, in the order a request meets them:

- ``server``: ``Simulator``, its state, and the background thread that serves it;
- ``http``: the ``asyncio`` HTTP/1.1 connection and request parsing;
- ``control``: the ``/_sim/<method>`` scripting endpoint;
- ``alerts``: the simulator as OME's Alert module, POSTing signed events;
- ``faults``: scripted misbehaviour; logs each API request as it picks its fault;
- ``quirks``: OME 0.18's wrong measurements (a new stream's first second, a stall's end);
- ``api``: OME's endpoints: auth, routing, v1/v2 stats and stream-info bodies;
- ``reply``: replies before they become bytes, and jsoncpp's JSON printing;
- ``topology``: scripted vhosts, apps and streams; ``streams``: the model and its counters;
- ``clock``: ``ManualClock``, skew and OME's time format;
- ``cli``: the ``python -m omealert.simulator`` command line.

The names exported here are the package's API; names with a leading underscore are shared
between its modules only.
"""

from __future__ import annotations

from .cli import main
from .clock import ManualClock
from .faults import FAULT_KINDS
from .quirks import QUIRK_KINDS
from .server import Simulator
from .streams import PROVIDER_KEYS, PUBLISHER_KEYS

__all__ = [
    "FAULT_KINDS",
    "PROVIDER_KEYS",
    "PUBLISHER_KEYS",
    "QUIRK_KINDS",
    "ManualClock",
    "Simulator",
    "main",
]
