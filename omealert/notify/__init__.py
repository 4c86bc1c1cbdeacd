"""Who hears what and when: the planner, rendering, the outbox and delivery.

Rendering runs in a Jinja sandbox with omealert's filters and escaping per channel.
"""
