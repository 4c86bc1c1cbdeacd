"""Real parts a test needs from the machine (a Debian binary such as Alertmanager or Chromium).

Why: a test against a real part that is not installed must neither fail obscurely nor pass
silently. `require` skips the test with the package to install, and conftest lists every
missing part at the end of the run. With OMEALERT_REQUIRE_REAL_PARTS=1 (set by `.ci/run`)
a missing part fails the test instead, so CI cannot go green without it.
"""

from __future__ import annotations

import os
import shutil

import pytest

MISSING: dict[str, str] = {}


def require(binary: str, package: str) -> str:
    """Return the path of `binary`, or skip (fail under CI) naming the Debian `package`."""
    found = shutil.which(binary) or (binary if os.access(binary, os.X_OK) else None)
    if found is not None:
        return found
    MISSING[binary] = package
    message = (
        f"real part missing: {binary} (Debian package {package}); "
        f"install it with `sudo apt-get install {package}` or run `make test` as root"
    )
    if os.environ.get("OMEALERT_REQUIRE_REAL_PARTS") == "1":
        pytest.fail(message)
    pytest.skip(message)
