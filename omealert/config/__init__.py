"""The YAML config: a file with positions in, validated ``Settings`` out.

Every problem is reported at once, each at its FILE:LINE:COL.
"""
