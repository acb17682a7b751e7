"""Helpers of the Qt front end's tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication


def wait_until(pred: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Process Qt events until ``pred()`` is true (returns it) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        QCoreApplication.processEvents()
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        # (not QTest.qWait: PySide6 holds the GIL through it, which starves the node's
        # thread of the interpreter, ~10x slower, so GUI -> node calls took seconds;
        # time.sleep lets it go)
        time.sleep(0.01)
