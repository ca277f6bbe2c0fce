# The reference mock as a container image, and the conformance suite as a second target.
#
#   bash scripts/build-image                    # builds craftkit-mock and craftkit-conformance
#   docker run --rm --network host craftkit-mock                # http://127.0.0.1:4010
#
# The build context is a folder of wheels (scripts/build-image fills build/image/wheels with
# this repository's two distributions and everything they need, for Linux and CPython 3.11),
# so the build itself needs no network. BASE is any Debian-based image with Python 3.11 and
# its venv module: python:3.11-slim-bookworm from a registry, or the one scripts/build-image
# bootstraps from Debian's packages when no registry is reachable.
ARG BASE=python:3.11-slim-bookworm

# The virtual environments are made in build stages and copied, so the wheels never stay in
# a layer of the images.
FROM ${BASE} AS mock-packages
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/craftkit \
    && /opt/craftkit/bin/pip install --quiet --no-cache-dir --no-index --find-links /tmp/wheels craftkit-mock

FROM mock-packages AS conformance-packages
RUN /opt/craftkit/bin/pip install --quiet --no-cache-dir --no-index --find-links /tmp/wheels craftkit-conformance \
    && /opt/craftkit/bin/pip uninstall --quiet --yes pip setuptools

# The images install nothing at run time: pip stays behind in the build stages.
FROM mock-packages AS mock-runtime
RUN /opt/craftkit/bin/pip uninstall --quiet --yes pip setuptools

FROM ${BASE} AS mock
RUN useradd --system --uid 10001 --user-group --no-create-home craftkit
COPY --from=mock-runtime /opt/craftkit /opt/craftkit
ENV PATH=/opt/craftkit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRAFTKIT_MOCK_HOST=127.0.0.1 \
    CRAFTKIT_MOCK_PORT=4010 \
    CRAFTKIT_MOCK_STORE=memory
# Every setting is an environment variable (README.md, "Running it in a container"):
#   CRAFTKIT_MOCK_HOST, CRAFTKIT_MOCK_PORT, CRAFTKIT_MOCK_WORKERS      where and how it serves
#   CRAFTKIT_MOCK_ALLOW_REMOTE=1 with CRAFTKIT_MOCK_CONTROL_TOKEN      beyond loopback (-p)
#   CRAFTKIT_MOCK_STORE=redis://HOST:PORT/0 with CRAFTKIT_MOCK_TOKEN_SECRET   state on Redis
#   SHARE_BASE_URL                                                   links that outlive a restart
USER craftkit
EXPOSE 4010
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['CRAFTKIT_MOCK_PORT'] + '/health', timeout=2)"]
ENTRYPOINT ["craftkit-mock"]

# The suite, for implementers whose CI runs containers:
#   docker run --rm --network host craftkit-conformance run --base-url https://staging.example ...
FROM mock AS conformance
COPY --from=conformance-packages /opt/craftkit /opt/craftkit
WORKDIR /tmp
HEALTHCHECK NONE
ENTRYPOINT ["craftkit-conformance"]
