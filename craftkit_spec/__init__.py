"""The contract, read from ``openapi.yaml``: the one place the API's shape is written down.

The mock server, the conformance suite, the docs and the tests all learn the API from this
package, so none of them keeps a second, hand-written copy of a field list or an error code.
"""

from craftkit_spec.loading import load_raw, load_resolved, load_validated, spec_path
from craftkit_spec.schemas import (
    body_limit,
    branches,
    declared_properties,
    enum,
    fact,
    header_parameter,
    item_schema,
    merged,
    undeclared_keys,
)
from craftkit_spec.walk import Operation, error_codes, error_table, iter_operations

__all__ = [
    "Operation",
    "body_limit",
    "branches",
    "declared_properties",
    "enum",
    "error_codes",
    "error_table",
    "fact",
    "header_parameter",
    "item_schema",
    "iter_operations",
    "load_raw",
    "load_resolved",
    "load_validated",
    "merged",
    "spec_path",
    "undeclared_keys",
]
