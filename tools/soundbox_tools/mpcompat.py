"""Which modules device code (sdk/, firmware/) may import: the ones MicroPython has.

The list is MicroPython's ESP32 port (GENERIC board, 1.22 and later), taken from
what micropython-esp32-stubs and micropython-stdlib-stubs document as present
there, built-in and frozen. Type-only modules the stubs also carry (typing, abc,
enum, types, __future__) do not exist on the device and are not listed.
"""

import ast
from pathlib import Path

MICROPYTHON_MODULES = frozenset(
    (
        # built-in modules
        "_thread", "array", "asyncio", "binascii", "bluetooth", "btree", "builtins",
        "cmath", "collections", "cryptolib", "deflate", "errno", "framebuf", "gc",
        "hashlib", "heapq", "io", "json", "machine", "math", "micropython", "network",
        "os", "platform", "random", "re", "select", "socket", "ssl", "struct", "sys",
        "time", "tls", "uctypes", "vfs", "websocket",
        # ESP32 only
        "esp", "esp32", "espnow", "aioespnow",
        # frozen into the ESP32 firmware (micropython-lib and drivers)
        "apa106", "dht", "ds18x20", "mip", "neopixel", "ntptime", "onewire",
        "requests", "umqtt", "umqtt.robust", "umqtt.simple", "upysh", "webrepl",
        # `import ufoo` still finds built-in `foo`; older code uses these names
        "uarray", "uasyncio", "ubinascii", "ubluetooth", "ucollections", "ucryptolib",
        "uerrno", "uhashlib", "uheapq", "uio", "ujson", "umachine", "uos", "uplatform",
        "urandom", "ure", "urequests", "uselect", "usocket", "ussl", "ustruct", "usys",
        "utime", "uwebsocket",
    )
)

# The device's own packages (sdk/soundbox, firmware/soundbox_fw): importable anywhere in device code.
DEVICE_PACKAGES = ("soundbox", "soundbox_fw")

# A handler that catches ImportError makes the import in its try body optional.
_CATCHES_IMPORT_ERROR = {"ImportError", "Exception", "BaseException"}


def allowed(module):
    """True if device code may import `module` (a dotted name must be listed in full: no os.path)."""
    if module in MICROPYTHON_MODULES:
        return True
    return any(module == p or module.startswith(p + ".") for p in DEVICE_PACKAGES)


def foreign_imports(path):
    """The imports in the Python file at `path` that MicroPython cannot satisfy, as (lineno, module).

    Allowed: modules in MICROPYTHON_MODULES, the DEVICE_PACKAGES and their submodules,
    relative imports, and optional imports: an import in the body of a `try:` with a
    handler that catches ImportError (`except ImportError`, a tuple naming it,
    `except Exception`, `except BaseException` or a bare `except:`). An import inside a
    function defined in such a try body is not optional: it runs later, unguarded.
    `from __future__ import ...` is foreign: MicroPython has no __future__ module.
    A file with a syntax error raises SyntaxError.
    """
    source = Path(path).read_text(encoding="utf-8")
    finder = _ImportFinder()
    finder.visit(ast.parse(source, filename=str(path)))
    return finder.found


class _ImportFinder(ast.NodeVisitor):
    def __init__(self):
        self.found = []
        self.optional = False

    def visit_Try(self, node):
        outer = self.optional
        self.optional = outer or any(_catches_import_error(h) for h in node.handlers)
        for stmt in node.body:
            self.visit(stmt)
        self.optional = outer
        for stmt in node.handlers + node.orelse + node.finalbody:
            self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_FunctionDef(self, node):
        outer = self.optional
        self.optional = False
        self.generic_visit(node)
        self.optional = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self._check(node.lineno, alias.name)

    def visit_ImportFrom(self, node):
        if node.level == 0:  # relative imports stay inside the device packages
            self._check(node.lineno, node.module)

    def _check(self, lineno, module):
        if not self.optional and not allowed(module):
            self.found.append((lineno, module))


def _catches_import_error(handler):
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _CATCHES_IMPORT_ERROR for n in names)
