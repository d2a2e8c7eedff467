"""Nearest-rank percentiles of raw values: the one rule behind the cloud's /stats latencies
and the simulator's exact report figures (soundbox_sim.metrics)."""
import math


def percentile_name(p):
    """The key of percentile p: p50, p99, and p99_9 for a fractional 99.9."""
    return "p%d" % p if p == int(p) else "p" + ("%g" % p).replace(".", "_")


def nearest_rank(values, ps=(50, 90, 99)):
    """{"n": count, "p50": ..., ...}: for each p in ps (99.9 allowed), the smallest value with
    at least p% of the values at or below it; None for every p when there are no values."""
    ordered = sorted(values)
    n = len(ordered)
    out = {"n": n}
    for p in ps:
        out[percentile_name(p)] = ordered[max(1, math.ceil(p * n / 100)) - 1] if n else None
    return out
