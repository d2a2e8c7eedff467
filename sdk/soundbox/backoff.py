"""Reconnect delays: exponential backoff with full jitter, capped (pure, no clock)."""


class Backoff:
    """delay(r) = r * min(cap, base * 2**failures), r uniform in [0, 1) from the caller.

    Full jitter spreads a fleet that lost its broker at the same instant, so the
    broker is not hit by every device again at the same instant.
    """

    def __init__(self, base_ms=500, cap_ms=300000):
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.failures = 0

    def next_delay_ms(self, r):
        ceiling = min(self.cap_ms, self.base_ms << min(self.failures, 30))
        self.failures += 1
        return int(r * ceiling)

    def give_up_fast(self):
        """After a permanent refusal: go straight to the longest delay."""
        self.failures = 31

    def reset(self):
        self.failures = 0
