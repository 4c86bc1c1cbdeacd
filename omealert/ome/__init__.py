"""Reading OME: the request plan, the REST API over omealert's own HTTP/1.1, normalising.

Also the server clock, estimated from OME's own times, that staleness is judged on.
"""
