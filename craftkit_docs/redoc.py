"""Where the docs site gets Redoc's standalone bundle, from a checkout or an installed package.

The bundle is Redoc's own code, so it is not shipped in this package; the site copies it in
(no CDN at view time). In order, the first that has it wins:

1. ``CRAFTKIT_REDOC_BUNDLE``: the path of a ``redoc.standalone.js``;
2. ``node_modules/redoc`` in the current directory or a parent (a checkout after ``npm ci``);
3. ``node_modules/redoc`` beside the installed package (an editable install of a checkout);
4. a per-user cache, filled once with ``npm install redoc@REDOC_VERSION`` when npm is there.

Without any of them, ``BundleMissingError`` says what to install or set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

REDOC_VERSION = "2.5.4"
"""The Redoc release the site is built and tested with (package.json pins the same)."""
_BUNDLE = Path("node_modules") / "redoc" / "bundles" / "redoc.standalone.js"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""Where the package lives: a checkout's root for an editable install."""
BUNDLE_VARIABLE = "CRAFTKIT_REDOC_BUNDLE"


class BundleMissingError(Exception):
    """No Redoc bundle could be found or fetched; the message says what to do."""


def default_cache(environ: Mapping[str, str]) -> Path:
    """The per-user cache folder for the fetched bundle (XDG_CACHE_HOME honoured)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "craftkit" / f"redoc-{REDOC_VERSION}"


def find_redoc_bundle(
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    package_root: Path | None = _PACKAGE_ROOT,
    cache: Path | None = None,
    npm: str | None = "npm",
) -> Path:
    """The path of ``redoc.standalone.js``, fetched into ``cache`` with npm if need be."""
    environ = os.environ if environ is None else environ
    given = environ.get(BUNDLE_VARIABLE)
    if given:
        if not Path(given).is_file():
            raise BundleMissingError(f"{BUNDLE_VARIABLE} names {given}, which is not a file")
        return Path(given)
    start = (cwd or Path.cwd()).resolve()
    roots = [start, *start.parents]
    if package_root is not None:
        roots.append(package_root)
    cache = cache or default_cache(environ)
    for root in [*roots, cache]:
        if (root / _BUNDLE).is_file():
            return root / _BUNDLE
    return _fetch(cache, npm)


def _fetch(cache: Path, npm: str | None) -> Path:
    program = shutil.which(npm) if npm else None
    if program is None:
        raise BundleMissingError(
            f"Redoc's bundle is needed and npm is not installed: install Node.js with npm "
            f"(it then fetches redoc@{REDOC_VERSION} once), or set {BUNDLE_VARIABLE} to a "
            "redoc.standalone.js"
        )
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [program, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
         "--loglevel=error", f"redoc@{REDOC_VERSION}"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    bundle = cache / _BUNDLE
    if result.returncode != 0 or not bundle.is_file():
        raise BundleMissingError(
            f"npm could not fetch redoc@{REDOC_VERSION} into {cache}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    return bundle
