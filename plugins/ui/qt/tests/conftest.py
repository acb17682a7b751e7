"""Qt offscreen, a QApplication in the main thread, a node on its own loop in a worker thread."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamerp2p.testing import in_ci

# test helpers (qt_testkit) live next to the tests; --import-mode=importlib does not add this dir
sys.path.insert(0, str(Path(__file__).parent))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

try:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication, QWidget
except ImportError as exc:  # PySide6 or a system library it loads is missing
    if in_ci():
        raise RuntimeError(
            f"PySide6 is required in CI (.ci/run installs its libraries): {exc}"
        ) from exc
    # not collected locally (CI has the libraries)
    print(f"streamerp2p-qt tests skipped: PySide6 cannot be imported ({exc})", file=sys.stderr)
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def qapp() -> QApplication:
    app = QApplication.instance() or QApplication(["streamerp2p-qt-tests"])
    assert isinstance(app, QApplication)
    return app


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
