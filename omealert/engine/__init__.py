"""The pure alert state machine: instances, transitions, and each target's history.

It only decides; polling, persistence and delivery happen around it, in ``runner``.
"""
