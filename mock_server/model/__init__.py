"""The mock's records and pure rules: standard library only, no I/O, no framework.

``records`` (the API's resources as frozen dataclasses), ``rules`` (functions of a record
and an instant), ``timestamps`` (the wire form of instants), ``clock`` (time as a value),
``faults`` (the failure switches), ``errors`` (the one error hierarchy) and ``ids``
(identifiers, keys and share tokens). Every other layer of the mock builds on these.
"""
