"""Type-check device code with mypy against MicroPython's stubs instead of CPython's typeshed.

micropython-stdlib-stubs installs a typeshed-style `stdlib/` into site-packages and
micropython-esp32-stubs installs machine.pyi, esp32.pyi, time.pyi ... top-level
beside it, where mypy does not look for single-file stubs (and site-packages may not
go on mypy's path). So we assemble a typeshed of symlinks whose `stdlib/` holds
both; mypy then treats every MicroPython module as standard library, which also
keeps it quiet about flaws inside the stubs themselves.

    python -m soundbox_tools.devicetypes [PATH ...]    (default: sdk firmware)
"""

import subprocess
import sys
import tempfile
from importlib.metadata import distribution
from pathlib import Path

STDLIB_STUBS = "micropython-stdlib-stubs"
PORT_STUBS = "micropython-esp32-stubs"


def build_typeshed(dest, port_dir=None):
    """Assemble a MicroPython typeshed in the empty or missing directory `dest`; return it.
    `port_dir`: a directory holding another port's stubs (e.g. the ESP32-S3's, installed
    with `pip install --target`) to use instead of micropython-esp32-stubs."""
    dest = Path(dest)
    stdlib = dest / "stdlib"
    stdlib.mkdir(parents=True)
    std = _top_level(STDLIB_STUBS)
    for entry in std["stdlib"].iterdir():  # includes VERSIONS, which mypy requires
        (stdlib / entry.name).symlink_to(entry)
    (stdlib / "_mpy_shed").symlink_to(std["_mpy_shed"])  # shared helpers the stubs import
    (dest / "stubs").symlink_to(std["stubs"])  # mypy-extensions, which mypy itself wants
    port = {p.name: p for p in Path(port_dir).iterdir()} if port_dir else _top_level(PORT_STUBS)
    for name, entry in port.items():
        if entry.suffix == ".pyi" or entry.is_dir():  # skip its README.md, pyproject.toml ...
            (stdlib / name).symlink_to(entry)
    return dest


def _top_level(dist_name):
    """{name: installed path} of the top-level files and directories of a distribution."""
    dist = distribution(dist_name)
    entries = {}
    for file in dist.files or ():
        top = file.parts[0]
        if top != ".." and not top.endswith(".dist-info"):
            entries[top] = Path(dist.locate_file(top))
    return entries


def typecheck(paths, config_file, port_dir=None):
    """Run mypy on `paths` with `config_file` and MicroPython's stubs; return (exit code, output)."""
    with tempfile.TemporaryDirectory(prefix="mpy-typeshed-") as tmp:
        typeshed = build_typeshed(Path(tmp) / "typeshed", port_dir)
        # No cache: its entries would point into this throwaway typeshed.
        cmd = [
            sys.executable, "-m", "mypy",
            "--config-file", str(config_file),
            "--custom-typeshed-dir", str(typeshed),
            "--cache-dir", "/dev/null",
            *map(str, paths),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or ["sdk", "firmware"]
    config = Path("mypy-device.ini")
    if not config.is_file():
        sys.exit("mypy-device.ini not found: run this from the repository root")
    code, output = typecheck(paths, config)
    print(output, end="")
    return code


if __name__ == "__main__":
    sys.exit(main())
