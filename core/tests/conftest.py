import sys
from pathlib import Path

# test helpers (simkit) live next to the tests; --import-mode=importlib does not add this dir
sys.path.insert(0, str(Path(__file__).parent))
