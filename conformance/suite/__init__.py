"""The rule modules; importing this package registers every rule in the catalogue."""

from conformance.suite import (  # noqa: F401
    auth,
    consistency,
    downloads,
    email,
    engagement,
    errors,
    faults,
    isolation,
    links,
    renders,
    shares,
    spec,
    stateful,
    webhooks,
)
