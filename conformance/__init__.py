"""The Craftkit Shares & delivery conformance suite: contract tests derived from openapi.yaml."""
