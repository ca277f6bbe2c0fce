"""The toolkit's own tests; each module mirrors the part of the toolkit it checks."""
