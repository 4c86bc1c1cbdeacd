"""``record`` and ``replay``: OME's raw answers to a file, played back through the client."""
