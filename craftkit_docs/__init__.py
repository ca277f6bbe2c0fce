"""The reference docs site, built from the two specs: ``craftkit-conformance docs --out DIR``.

``site`` writes the site (the Redoc reference, an HTML and Markdown page per operation, the
mock's page); ``pages`` makes the Markdown pages; ``redoc`` finds Redoc's standalone bundle.
"""
