"""Passive conformance: traffic the suite did not send, recorded or live, checked.

``check`` reads recordings (HAR, NDJSON), ``proxy`` checks live traffic on its way; both
judge it against the spec and the catalogue's rules the traffic decides.
"""
