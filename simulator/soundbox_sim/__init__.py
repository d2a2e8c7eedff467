"""Fleet simulator: the real firmware on a CPython HAL (directory flash, WAV or timing-only audio)."""
