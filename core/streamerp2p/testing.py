"""Helpers for the test suites of the kernel and of plugins."""

from __future__ import annotations

import os
import shutil


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require_tool(name: str, install_hint: str = "") -> str:
    """Path of an external tool; skips the test locally if missing, fails it in CI.

    ``.ci/run`` installs every tool the tests use, so a missing tool in CI is a real failure.
    """
    import pytest

    path = shutil.which(name)
    if path is None:
        hint = install_hint or f"apt-get install {name}"
        if in_ci():
            pytest.fail(f"{name} is required in CI ({hint}; .ci/run installs it)")
        pytest.skip(f"{name} not installed ({hint})")
    return path
