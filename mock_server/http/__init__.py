"""Everything that knows HTTP: Starlette's routes and middleware, uvicorn's protocol.

``routes`` (the public API's endpoints) and ``control`` (the mock's control API) translate
requests into store calls; ``requests`` reads them (the caller, the bounded JSON body, the
address) and ``bodies`` writes the answers; ``middleware`` looks the caller up once per
request, rate-limits and journals; ``handlers`` turns refusals into the envelope; and
``protocol`` is uvicorn's HTTP protocol with the limits and deadlines a shared mock needs.
"""
