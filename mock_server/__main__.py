"""``python -m mock_server``: the same as ``craftkit-mock``."""

from mock_server.cli import main

main()
