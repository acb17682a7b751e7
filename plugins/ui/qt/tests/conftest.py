"""Qt offscreen, a QApplication in the main thread, a node on its own loop in a worker thread."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamerp2p.testing import in_ci

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

try:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QWidget
except ImportError as exc:  # PySide6 or a system library it loads is missing
    if in_ci():
        raise RuntimeError(
            f"PySide6 is required in CI (.ci/run installs its libraries): {exc}"
        ) from exc
    pytest.skip(f"PySide6 cannot be imported here: {exc}", allow_module_level=True)


@pytest.fixture(scope="session")
def qapp() -> QApplication:
    app = QApplication.instance() or QApplication(["streamerp2p-qt-tests"])
    assert isinstance(app, QApplication)
    return app


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
        QTest.qWait(10)  # (processes events while it waits)


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[QWidget, str], Path]:
    """Save a screenshot of a widget in tmp_path (and in $STREAMERP2P_SCREENSHOTS if set)."""

    def save(widget: QWidget, name: str) -> Path:
        QCoreApplication.processEvents()
        path = tmp_path / f"{name}.png"
        assert widget.grab().save(str(path)), path
        if dest := os.environ.get("STREAMERP2P_SCREENSHOTS"):
            Path(dest).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(dest) / path.name)
        return path

    return save
