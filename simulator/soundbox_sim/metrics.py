"""What a run measures: counters sampled once a second, and latency histograms.

Histograms have fixed log-spaced buckets from 1 ms to 30 s (20 per decade, each about
12% wide), so workers can merge theirs by adding counts and a run of any length costs
the same memory. A percentile read from a histogram is the upper bound of the bucket it
falls in: never optimistic, at most 12% high. Where the raw values are at hand (the
payment latencies, read from the cloud's records), `exact_percentiles` gives the
nearest-rank value itself.
"""

import bisect
import json
import math

from soundbox_cloud.percentiles import nearest_rank, percentile_name

LOW_MS = 1.0
HIGH_MS = 30000.0
PER_DECADE = 20
_DECADES = math.log10(HIGH_MS / LOW_MS)
# Upper bounds of the buckets; values below 1 ms go in the first, above 30 s in an overflow bucket.
BOUNDS = [LOW_MS * 10 ** (i / PER_DECADE) for i in range(int(math.ceil(_DECADES * PER_DECADE)) + 1)]
BOUNDS[-1] = HIGH_MS
PERCENTILES = (50, 90, 99, 99.9)


class LogHistogram:
    def __init__(self, counts=None):
        self.counts = list(counts) if counts else [0] * (len(BOUNDS) + 1)  # last: over 30 s
        self.n = sum(self.counts)

    def add(self, ms):
        self.counts[bisect.bisect_left(BOUNDS, ms)] += 1
        self.n += 1

    def merge(self, other):
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.n += other.n
        return self

    def percentile(self, p):
        """Upper bound (ms) of the bucket holding the nearest-rank p-th percentile;
        None when empty, inf when it lies beyond 30 s."""
        if not self.n:
            return None
        rank = max(1, math.ceil(p * self.n / 100))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return BOUNDS[i] if i < len(BOUNDS) else math.inf
        return math.inf

    def cdf(self):
        """[(upper bound ms, fraction at or below)] for the non-empty range."""
        out, seen = [], 0
        for i, c in enumerate(self.counts[:-1]):
            seen += c
            if c or out:
                out.append((BOUNDS[i], seen / self.n))
            if seen == self.n:
                break
        return out

    def summary(self):
        s = {"n": self.n}
        for p in PERCENTILES:
            v = self.percentile(p)
            s[percentile_name(p)] = None if v is None else (round(v, 1) if v != math.inf else "over 30000")
        return s

    def to_json(self):
        return self.counts

    @classmethod
    def from_json(cls, counts):
        return cls(counts)


def exact_percentiles(values, ps=PERCENTILES):
    """Nearest-rank percentiles of raw values (the cloud's rule), 99.9 among them by default."""
    return nearest_rank(values, ps)


class Counters:
    """Monotonic totals by name; `sample(t)` returns this second's JSON Lines records
    {"t", "counter", "total", "rate"} (rate: per second since the last sample)."""

    def __init__(self):
        self.totals = {}
        self._last = {}
        self._last_t = None

    def add(self, name, n=1):
        self.totals[name] = self.totals.get(name, 0) + n

    def set(self, name, value):
        self.totals[name] = value

    def sample(self, t):
        dt = None if self._last_t is None else t - self._last_t
        records = []
        for name in sorted(self.totals):
            total = self.totals[name]
            prev = self._last.get(name, 0)
            rate = (total - prev) / dt if dt else 0.0
            records.append({"t": round(t, 3), "counter": name, "total": total, "rate": round(rate, 2)})
            self._last[name] = total
        self._last_t = t
        return records


class JsonLines:
    def __init__(self, path):
        self.path = path
        self._f = open(path, "w", buffering=1)

    def write_all(self, records):
        for r in records:
            self._f.write(json.dumps(r) + "\n")

    def close(self):
        self._f.close()


# ---- worker CPU over a window: idle cost and what a payment adds ------------------------

def window_cpu(start, end):
    """{worker: (cpu_s, seconds)} between two snapshots' marks of one fleet ({worker: [when its
    last tick came, its cpu_s]}): each worker over the span of its own two ticks, so a tick's
    lateness does not count as CPU. Workers missing from either side (or with no span) are left out."""
    out = {}
    for w, (t1, c1) in end.items():
        if w in start and t1 > start[w][0]:
            t0, c0 = start[w]
            out[w] = (c1 - c0, t1 - t0)
    return out


def idle_rate(idle):
    """CPU seconds per second the fleet's workers spend with no payments (window_cpu of the idle window)."""
    return sum(cpu / s for cpu, s in idle.values())


def marginal_cpu_s(idle, pay):
    """CPU the payments cost over their window beyond idling: per worker, its CPU over the
    payment window less its own idle rate times that window's length, summed."""
    return sum(cpu - idle[w][0] / idle[w][1] * s for w, (cpu, s) in pay.items() if w in idle)


def cpu_figures(idle, pay, devices, payments):
    """The window CPU figures of one fleet: idle µs per device-second, marginal and all-in ms per payment."""
    pay_cpu = sum(cpu for cpu, _ in pay.values())
    spans = [s for _, s in pay.values()]
    out = {"payment_window_cpu_s": round(pay_cpu, 3),
           "payment_window_s": round(sum(spans) / len(spans), 2) if spans else None,
           "cpu_ms_per_payment": round(pay_cpu * 1000 / payments, 3) if payments else None,
           "idle_window_s": None, "idle_cpu_s_per_s": None, "idle_cpu_us_per_device_s": None,
           "marginal_cpu_ms_per_payment": None}
    if idle:
        rate = idle_rate(idle)
        out["idle_window_s"] = round(sum(s for _, s in idle.values()) / len(idle), 2)
        out["idle_cpu_s_per_s"] = round(rate, 4)
        out["idle_cpu_us_per_device_s"] = round(rate * 1e6 / devices, 2) if devices else None
        if payments:
            out["marginal_cpu_ms_per_payment"] = round(marginal_cpu_s(idle, pay) * 1000 / payments, 3)
    return out
