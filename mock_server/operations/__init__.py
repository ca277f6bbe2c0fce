"""The mock's operations: what each API call does, over an engine, with no HTTP in sight.

``store`` (the operations, named after the API's), ``callers`` (who a request comes from,
as one typed value), ``traffic`` (rate windows and the request journal), ``email``
(composing, routing and sending mail), ``pdf`` (drawing and keeping PDFs) and
``validation`` (bodies checked against the spec's schemas, Zod-style issues). They raise the
model's errors and name only the engine interface, never an engine.
"""
