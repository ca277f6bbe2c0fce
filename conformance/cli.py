"""``craftkit-conformance``: a thin command line over the suite.

Exit codes: 0 success, 1 a contract failure, 2 a usage or set-up problem.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

import craftkit_spec


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Check an implementation of the Craftkit Shares & delivery API against openapi.yaml."""


@main.command()
def codes() -> None:
    """List every operation's error statuses and the codes each may carry.

    Read from openapi.yaml: the table an implementer checks their error handling against.
    """
    spec = craftkit_spec.load_resolved()
    table = Table(title="Error codes by operation (openapi.yaml)")
    for column in ("operation", "method", "path", "status", "codes"):
        table.add_column(column)
    error_table = craftkit_spec.error_table(spec)
    for operation in craftkit_spec.iter_operations(spec):
        for status in sorted(s for (op, s) in error_table if op == operation.operation_id):
            table.add_row(
                operation.operation_id,
                operation.method.upper(),
                operation.path,
                str(status),
                ", ".join(sorted(error_table[(operation.operation_id, status)])),
            )
    Console().print(table)
