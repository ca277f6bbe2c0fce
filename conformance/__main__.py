"""``python -m conformance``: the same as ``craftkit-conformance``."""

from conformance.cli import main

main()
