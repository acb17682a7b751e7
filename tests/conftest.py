import sys
from pathlib import Path

# helpers shared by the end-to-end tests live here; --import-mode=importlib does not add this dir
sys.path.insert(0, str(Path(__file__).parent))
