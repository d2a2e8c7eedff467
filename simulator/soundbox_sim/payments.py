"""Payment traffic for a scenario: when payments arrive, for which shop, how much.

Arrivals are an open-loop schedule fixed in advance from the seed: a Poisson process at
`rate` per second (thinned by the daily curve's factor for the hour, when there is
one), plus bursts of `count` payments spread evenly over `over` seconds. The sender
keeps to the schedule whatever the cloud's answers take, and records how late it was.

Amounts are integer paise from a log-normal around a median counter sale (most UPI
payments at a shop are small; a few are large), mostly whole rupees.
"""

import json
import math
import queue
import random
import threading
import time

from soundbox_sim.cloudkeys import KeyedConnection

SENDERS = 8  # HTTP keep-alive connections to the cloud's API
RETRY_503_S = 15  # a 503 says "retry the same txn later": a PSP does, for this long
MIN_PAISE = 100


def amount_paise(rng, median_rupees=150, sigma=1.2, max_rupees=200000, paise_share=0.15):
    rupees = math.exp(rng.gauss(math.log(median_rupees), sigma))
    rupees = max(1, min(int(max_rupees), int(round(rupees))))
    paise = rng.randrange(1, 100) if rng.random() < paise_share else 0
    return max(MIN_PAISE, rupees * 100 + paise) if rupees < max_rupees else rupees * 100


def arrival_times(pay, rng):
    """Sorted seconds (relative to the payments' start) at which payments arrive."""
    times = []
    duration, rate = pay["duration"] or 0, pay["rate"]
    curve = pay["daily_curve"]
    if rate > 0 and duration > 0:
        peak = max(curve["hours"]) if curve else 1.0
        t = 0.0
        while True:
            t += rng.expovariate(rate * peak) if peak > 0 else duration
            if t >= duration:
                break
            if curve:  # thinning: keep with probability factor(hour) / peak
                hour = int(t // curve["hour_s"]) % 24
                if rng.random() * peak > curve["hours"][hour]:
                    continue
            times.append(t)
    for b in pay["bursts"]:
        n, over = b["count"], b["over"]
        times.extend(b["at"] + (over * k / n if n > 1 else 0) for k in range(n))
    times.sort()
    return times


def schedule(pay, ids, seed, run_tag):
    """[(t, device, amount, txn)] for the scenario's payment section."""
    rng = random.Random(seed)
    out = []
    a = pay["amounts"]
    for i, t in enumerate(arrival_times(pay, rng)):
        device = ids[i % len(ids)] if pay["target"] == "round_robin" else rng.choice(ids)
        amount = amount_paise(rng, a["median_rupees"], a["sigma"], a["max_rupees"], a["paise_share"])
        out.append((t, device, amount, "%s-%07d" % (run_tag, i + 1)))
    return out


class PaymentSender:
    """Posts the schedule to the cloud's /payments from a few keep-alive connections,
    with `api_key` (a psp key of the devices' tenant) as the bearer token.

    Results: accepted [(txn, device, amount)], rejected [(txn, status, error)],
    lag_ms (how late each send left against its scheduled time)."""

    def __init__(self, api_url, counters, lock, api_key):
        self.api_url, self.api_key = api_url, api_key
        self.counters, self.lock = counters, lock
        self.accepted, self.rejected, self.lag_ms = [], [], []
        self._q = queue.Queue(maxsize=10000)
        self._threads = []
        self._stop = threading.Event()
        self._finished = 0
        self.done = threading.Event()

    def start(self, plan, t0):
        """plan: [(t, device, amount, txn)]; t0: time.monotonic() at which t = 0."""
        feeder = threading.Thread(target=self._feed, args=(plan, t0), name="pay-feed", daemon=True)
        self._threads = [feeder] + [threading.Thread(target=self._send, name="pay-%d" % i, daemon=True)
                                    for i in range(SENDERS)]
        for t in self._threads:
            t.start()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _feed(self, plan, t0):
        for item in plan:
            wait = t0 + item[0] - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            if self._stop.is_set():
                break
            self._q.put((t0 + item[0],) + item[1:])
        for _ in range(SENDERS):
            self._q.put(None)

    def _send(self):
        conn = KeyedConnection(self.api_url, self.api_key)
        while True:
            item = self._q.get()
            if item is None:
                break
            due, device, amount, txn = item
            body = json.dumps({"device": device, "amount": amount, "txn": txn})
            lag = (time.monotonic() - due) * 1000
            status, answer, give_up, delay = 0, b"", time.monotonic() + RETRY_503_S, 0.25
            while True:
                status, answer = conn.request("POST", "/payments", body)
                if status != 503 or time.monotonic() > give_up or self._stop.is_set():
                    break
                with self.lock:
                    self.counters.add("payments.retried_503")
                time.sleep(delay)
                delay = min(2.0, delay * 2)
            with self.lock:
                self.lag_ms.append(lag)
                if status == 202:
                    self.accepted.append((txn, device, amount))
                    self.counters.add("payments.accepted")
                else:
                    self.rejected.append((txn, status, answer.decode(errors="replace")[:200]))
                    self.counters.add("payments.rejected")
        conn.close()
        with self.lock:
            self._finished += 1
            if self._finished == SENDERS:
                self.done.set()
