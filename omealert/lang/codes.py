"""The message codes of OME's Alert module, which rules name in ``ome_alert("CODE")``.

Kept in the language's wing so a rule's code is checked at load (an unknown one is an error
with a suggestion); ``ome/alert.py``, which reads OME's POSTs, takes them from here.
"""

from __future__ import annotations

#: Every message code of OME's Alert module (0.18 through 0.21), and the recovery code.
INGRESS_METRIC_CODES = frozenset(
    {
        "INGRESS_BITRATE_LOW",
        "INGRESS_BITRATE_HIGH",
        "INGRESS_FRAMERATE_LOW",
        "INGRESS_FRAMERATE_HIGH",
        "INGRESS_WIDTH_SMALL",
        "INGRESS_WIDTH_LARGE",
        "INGRESS_HEIGHT_SMALL",
        "INGRESS_HEIGHT_LARGE",
        "INGRESS_SAMPLERATE_LOW",
        "INGRESS_SAMPLERATE_HIGH",
        "INGRESS_LONG_KEY_FRAME_INTERVAL",
        "INGRESS_HAS_BFRAME",
    }
)
STATUS_CODES = frozenset(
    {
        "INGRESS_STREAM_CREATED",
        "INGRESS_STREAM_PREPARED",
        "INGRESS_STREAM_DELETED",
        "INGRESS_STREAM_CREATION_FAILED_DUPLICATE_NAME",
        "EGRESS_STREAM_CREATED",
        "EGRESS_STREAM_PREPARED",
        "EGRESS_STREAM_DELETED",
        "EGRESS_STREAM_CREATION_FAILED_OUTPUT_PROFILE",
        "EGRESS_STREAM_CREATION_FAILED_DECODER",
        "EGRESS_STREAM_CREATION_FAILED_ENCODER",
        "EGRESS_STREAM_CREATION_FAILED_FILTER",
        "EGRESS_TRANSCODE_FAILED_DECODING",
        "EGRESS_TRANSCODE_FAILED_ENCODING",
        "EGRESS_TRANSCODE_FAILED_FILTERING",
        "EGRESS_LLHLS_READY",
        "EGRESS_HLS_READY",
    }
)
QUEUE_CODES = frozenset({"INTERNAL_QUEUE_CONGESTION"})
OK_CODE = "OK"
ALL_CODES = INGRESS_METRIC_CODES | STATUS_CODES | QUEUE_CODES | {OK_CODE}
EVENT_TYPES = frozenset({"INGRESS", "EGRESS", "INTERNAL_QUEUE"})
#: the prefix of the sample fields that carry OME's current codes (``ome_alert.CODE``)
FIELD_PREFIX = "ome_alert."
