"""The watcher's own HTTP listener (``watch --listen``): ``/metrics`` and ``/healthz``.

An ``aiohttp.web`` application in the watcher's event loop, bounded so that no client of
the listener can take from the watcher what its polls need: connections, file descriptors,
memory or time on the loop.
"""
