import sys
from pathlib import Path

# the helpers beside the tests (--import-mode=importlib does not add this dir)
sys.path.insert(0, str(Path(__file__).parent))
