"""The contract, read from ``openapi.yaml``: the one place the API's shape is written down.

The mock server, the conformance suite, the docs and the tests all learn the API from this
package, so none of them keeps a second, hand-written copy of a field list or an error code:
``loading`` finds and parses the spec files, ``schemas`` looks inside their JSON Schemas,
``operations`` walks their operations and error codes, ``facts`` gives the values code
needs (limits, enumerations, the rules' numbers and words), and ``decisions`` says what
each citation of an ``x-source`` is (fact, decision or assumption) and links decisions
to their entry in the decision record.
"""

from craftkit_spec.decisions import (
    DECISIONS_RECORD,
    Source,
    decision_anchor,
    link_decisions,
    source,
    sources,
)
from craftkit_spec.facts import (
    WebhookRules,
    body_limit,
    component,
    control_component,
    dedup_window_seconds,
    enum,
    fact,
    fault_switches,
    header_parameter,
    revoke_reason,
    timestamp_pattern,
    webhook_rules,
)
from craftkit_spec.loading import load_raw, load_resolved, spec_path
from craftkit_spec.operations import (
    Operation,
    error_codes,
    error_table,
    iter_operations,
    iter_webhooks,
)
from craftkit_spec.schemas import (
    branches,
    declared_properties,
    item_schema,
    merged,
    undeclared_keys,
)

__all__ = [
    "DECISIONS_RECORD",
    "Operation",
    "Source",
    "WebhookRules",
    "body_limit",
    "branches",
    "component",
    "control_component",
    "decision_anchor",
    "declared_properties",
    "dedup_window_seconds",
    "enum",
    "error_codes",
    "error_table",
    "fact",
    "fault_switches",
    "header_parameter",
    "item_schema",
    "iter_operations",
    "iter_webhooks",
    "link_decisions",
    "load_raw",
    "load_resolved",
    "merged",
    "revoke_reason",
    "source",
    "sources",
    "spec_path",
    "timestamp_pattern",
    "undeclared_keys",
    "webhook_rules",
]
