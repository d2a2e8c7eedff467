"""Coverage-guided fuzzing of the MQTT codec and the client session (atheris / libFuzzer).

What one fuzz input goes through:
  1. mqttcodec.decode(data): only CodecError may escape; whatever decodes must encode
     and decode back to the same packet.
  2. mqttcodec.Decoder(max_size=small).feed(...) with the input cut into pieces (the
     cut points come from the input itself, so a run is reproducible): only CodecError,
     the same packets as decoding the whole buffer, and the buffer never holds more
     than one packet's worth of bytes (bounded memory).
  3. mqttsession.Session.receive(...) after connection_made, fed in pieces, twice:
     still waiting for CONNACK, and already connected with QoS 1 publishes in flight.
     It must never raise, everything it wants to send must be valid MQTT, its queues
     stay within their bounds, it always has a deadline while a connection is open,
     and ticking at a late time always ends in a dead connection (nothing waits forever).
A slow input is a hang: libFuzzer's -timeout (default here 2 s per input) reports it.

Install (not a project dependency; a cp311 wheel exists):
    .venv/bin/pip install atheris

Run:
    .venv/bin/python bench/fuzz_codec.py                      # 60 s
    .venv/bin/python bench/fuzz_codec.py -max_total_time=300
    .venv/bin/python bench/fuzz_codec.py -runs=200000
    .venv/bin/python bench/fuzz_codec.py crash-1234abcd       # replay one input
Other libFuzzer flags (-timeout=, -max_len=, -jobs=, ...) pass straight through.
The seed corpus is the encoding of one valid packet of every type plus a few
streams; it goes into a temporary directory unless you name a corpus directory.

The script runs libFuzzer in a child process and ends with a plain summary
(executions, time, exec/s, coverage, crashes with the input in hex).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

CHILD_ENV = "SOUNDBOX_FUZZ_CHILD"
DEFAULT_FLAGS = {"-timeout": "2", "-max_len": "1024", "-rss_limit_mb": "2048"}


# ---- the harness (runs in the child) ---------------------------------------

def pieces(data, salt):
    """Cut data into 1..64-byte pieces at points derived from the data (deterministic)."""
    seed = zlib.crc32(data, salt) or 1
    at = 0
    while at < len(data):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        size = 1 + (seed >> 16) % 64
        yield data[at:at + size]
        at += size


def seed_packets(codec):
    """One valid packet of every type (encoded by the codec itself)."""
    P = codec.Packet
    return [
        P(codec.CONNECT, client_id="sb-0001", keepalive=60, clean=False,
          will=("sb/sb-0001/status", b'{"state":"offline"}', 1, True), username="u", password=b"p"),
        P(codec.CONNECT, client_id="", keepalive=0, clean=True),
        P(codec.CONNACK, session_present=True, code=0),
        P(codec.CONNACK, code=5),
        P(codec.PUBLISH, topic="sb/sb-0001/notify", qos=1, pid=7, dup=True,
          payload=b'{"txn":"T1","amount":25000,"currency":"INR","ts":1}'),
        P(codec.PUBLISH, topic="sb/sb-0001/telemetry", qos=0, retain=True, payload=b"{}"),
        P(codec.PUBACK, pid=1), P(codec.PUBREC, pid=2), P(codec.PUBREL, pid=3),
        P(codec.PUBCOMP, pid=4),
        P(codec.SUBSCRIBE, pid=5, topics=[("sb/+/ack", 1), ("sb/#", 0)]),
        P(codec.SUBACK, pid=5, codes=[0, 1, 2, 0x80]),
        P(codec.UNSUBSCRIBE, pid=6, topics=["sb/+/ack"]),
        P(codec.UNSUBACK, pid=6),
        P(codec.PINGREQ), P(codec.PINGRESP), P(codec.DISCONNECT),
    ]


def seed_inputs(codec):
    packets = seed_packets(codec)
    singles = [codec.encode(p) for p in packets]
    # What a broker sends a device, as one stream (CONNACK first, as the session expects).
    connack, publish, puback, suback, pingresp = (singles[2], singles[4], singles[6],
                                                  singles[11], singles[15])
    streams = [connack + suback + publish + puback + pingresp, connack + publish * 3, puback * 4]
    return singles + streams


def make_harness(codec, session_mod):
    CodecError = codec.CodecError
    connack = codec.encode(codec.Packet(codec.CONNACK, session_present=True))
    event_types = (session_mod.Connected, session_mod.ConnectionRefused, session_mod.Message,
                   session_mod.Delivered, session_mod.Subscribed, session_mod.ConnectionDead)

    def check_decode(data):
        try:
            packet, used = codec.decode(data)
        except CodecError:
            return
        if packet is None:
            assert used == 0, "incomplete input but %d bytes used" % used
            return
        assert 0 < used <= len(data), "used %d of %d bytes" % (used, len(data))
        again = codec.encode(packet)
        assert codec.decode(again) == (packet, len(again)), "re-encoding changed %r" % (packet,)

    def whole_buffer(data, max_size):
        """Packets from decode() applied repeatedly; and whether it stopped on an error."""
        packets = []
        try:
            while True:
                packet, used = codec.decode(data, max_size)
                if packet is None:
                    return packets, False
                packets.append(packet)
                data = data[used:]
        except CodecError:
            return packets, True

    def check_decoder(data):
        max_size = 16 + (data[0] if data else 0)  # small, so the size limit is exercised
        decoder = codec.Decoder(max_size)
        got, failed = [], False
        try:
            for piece in pieces(data, 1):
                got += decoder.feed(piece)
                assert len(decoder.buf) < max_size + 5, "decoder holds %d bytes" % len(decoder.buf)
        except CodecError:
            failed = True
        expected, expected_failed = whole_buffer(data, max_size)
        assert failed == expected_failed, "stream error %r, whole-buffer error %r" % (failed, expected_failed)
        if failed:  # packets of the feed() that raised are dropped with it
            assert got == expected[:len(got)], "stream and whole-buffer packets differ"
        else:
            assert got == expected, "stream and whole-buffer packets differ"

    def check_sent(session):
        out = session.data_to_send()
        decoder = codec.Decoder(codec.MAX_REMAINING)
        sent = decoder.feed(out)
        assert decoder.buf == b"", "session sent a partial packet"
        return sent

    def check_session(data, connected):
        s = session_mod.Session("sb-fuzz", keepalive_s=30, max_inflight=2, max_queued=2, max_packet=256)
        now = 1000
        s.connection_made(now)
        check_sent(s)
        if connected:
            s.receive(connack, now)
            assert s.state == session_mod.CONNECTED
            for i in range(4):
                s.publish("sb/sb-fuzz/ack", b"a%d" % i, 1, now=now)
            s.publish("sb/sb-fuzz/telemetry", b"t", 0, now=now)
            check_sent(s)
        for piece in pieces(data, 2):
            now += 7
            for event in s.receive(piece, now):
                assert isinstance(event, event_types), "unknown event %r" % (event,)
                if isinstance(event, session_mod.Message) and event.qos:
                    s.ack(event.pid, now)  # what the driver does once the app has the message
            check_sent(s)
            assert len(s.inflight) <= s.max_inflight and len(s.queued) <= s.max_queued, "bounds broken"
            if s.state != session_mod.DISCONNECTED:
                assert s.next_deadline() is not None, "open connection with no deadline: could wait forever"
        # Silence from now on: a late tick must ping, a later one must give up.
        for late in (now + 10 ** 9, now + 2 * 10 ** 9):
            s.tick(late)
            check_sent(s)
        assert s.state == session_mod.DISCONNECTED, "session still %s after silence" % s.state
        # Reconnect: whatever is in flight goes out again with DUP and the same packet id.
        in_flight = [pid for pid, _ in s.inflight]
        s.connection_made(now)
        s.receive(connack, now)
        resent = [p.pid for p in check_sent(s) if p.kind == codec.PUBLISH and p.dup]
        assert resent[:len(in_flight)] == in_flight, "resent %r, in flight %r" % (resent, in_flight)

    def one_input(data):
        check_decode(data)
        check_decoder(data)
        check_session(data, connected=False)
        check_session(data, connected=True)

    return one_input


def child_main(argv):
    import atheris

    with atheris.instrument_imports(include=["soundbox"]):
        from soundbox import mqttcodec, mqttsession
    atheris.Setup(argv, make_harness(mqttcodec, mqttsession))
    atheris.Fuzz()


# ---- the runner (parent): seeds, child process, summary --------------------

def write_seeds(directory):
    from soundbox import mqttcodec

    for i, data in enumerate(seed_inputs(mqttcodec)):
        with open(os.path.join(directory, "seed-%02d" % i), "wb") as f:
            f.write(data)


def last_int(pattern, text):
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def summarize(log, seconds, artifacts_dir):
    execs = last_int(r"stat::number_of_executed_units:\s*(\d+)", log)
    if execs is None:
        execs = last_int(r"#(\d+)\s", log)
    cov = last_int(r"\bcov: (\d+)", log)
    ft = last_int(r"\bft: (\d+)", log)
    corpus = last_int(r"\bcorp: (\d+)", log)
    crashes = sorted(f for f in os.listdir(artifacts_dir)
                     if f.startswith(("crash-", "timeout-", "oom-", "leak-", "slow-unit-")))
    rate = (execs or 0) / seconds if seconds else 0
    print("\n==== fuzz_codec summary ====")
    print("executions:      %s" % (execs if execs is not None else "unknown"))
    print("wall time:       %.1f s" % seconds)
    print("exec/s:          %.0f" % rate)
    if cov is None:
        print("coverage:        n/a (replaying inputs; libFuzzer reports coverage while fuzzing)")
    else:
        print("coverage:        %d edges (cov), %s features (ft), corpus %s inputs" % (cov, ft, corpus))
    print("crashes/hangs:   %d" % len(crashes))
    for name in crashes:
        path = os.path.join(artifacts_dir, name)
        with open(path, "rb") as f:
            data = f.read()
        print("  %s (%d bytes): %s" % (path, len(data), data[:256].hex()))
    return crashes


def main(argv):
    flags = [a for a in argv if a.startswith("-")]
    paths = [a for a in argv if not a.startswith("-")]
    names = {f.split("=", 1)[0] for f in flags}
    if "-runs" not in names and "-max_total_time" not in names and not any(os.path.isfile(p) for p in paths):
        flags.append("-max_total_time=60")
    for name, value in DEFAULT_FLAGS.items():
        if name not in names:
            flags.append("%s=%s" % (name, value))
    work = tempfile.mkdtemp(prefix="soundbox-fuzz-")
    artifacts = os.path.join(work, "artifacts")
    os.makedirs(artifacts)
    if "-artifact_prefix" not in names:
        flags.append("-artifact_prefix=%s/" % artifacts)
    if not paths:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        write_seeds(corpus)
        paths = [corpus]
    flags.append("-print_final_stats=1")
    cmd = [sys.executable, os.path.abspath(__file__)] + flags + paths
    print("fuzz_codec: %s" % " ".join(cmd[2:]), flush=True)
    started = time.monotonic()
    env = dict(os.environ, **{CHILD_ENV: "1"})
    log_lines = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as child:
        for line in child.stdout:
            log_lines.append(line)
            sys.stdout.write(line)
        code = child.wait()
    crashes = summarize("".join(log_lines), time.monotonic() - started, artifacts)
    if crashes:
        print("artifacts kept in %s; replay one with: %s %s <file>"
              % (artifacts, sys.executable, sys.argv[0]))
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("libFuzzer exit code: %d" % code)
    return 1 if crashes or code else 0


if __name__ == "__main__":
    if os.environ.get(CHILD_ENV):
        child_main(sys.argv)
    else:
        sys.exit(main(sys.argv[1:]))
