"""Core test modules import `check` as a top-level module, as they do in the MicroPython VM
(where tests/core is staged onto sys.path): make that work under pytest in any import mode."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
