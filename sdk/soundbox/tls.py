"""TLS for the device link (MicroPython 1.22+; on CPython see the end of this note).

Always: the server's certificate is verified against our pinned CA
(CERT_REQUIRED; MicroPython's client default is CERT_NONE, so it is set
explicitly and checked), the server name is sent (SNI) and checked, and the
device's own certificate and key are presented (mutual TLS).

The identity is DER: MicroPython's own mbedTLS configuration has no PEM parser
(measured on the unix port: PEM gives ValueError('invalid cert') / ('invalid key')),
and DER loads everywhere. MicroPython's ssl takes the DER bytes directly; CPython's
ssl loads a chain only from PEM files, so on CPython the simulator supplies the
context (soundbox_sim.link.install_context_cache, which reads the same DER files).
"""

import os
import sys

import ssl

IDENTITY_FILES = ("ca.der", "device.der", "device.key.der")
OLD_LAYOUT = "device.pem"  # what a bundle held before DER: MicroPython cannot read it


class TlsSetupError(Exception):
    """The device's TLS identity is missing or unusable (found before any network traffic).
    Retrying will not help until someone provisions the box again."""

    permanent = True


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def missing_files(identity_dir):
    """Names of the identity files that are not in identity_dir."""
    return [name for name in IDENTITY_FILES if not _exists(identity_dir + "/" + name)]


def old_layout(identity_dir):
    """True when identity_dir holds the old PEM bundle and not the DER one."""
    return _exists(identity_dir + "/" + OLD_LAYOUT) and not _exists(identity_dir + "/device.der")


def old_layout_reason(identity_dir):
    return ("identity in %s is in the old PEM layout, which MicroPython cannot read: re-provision it "
            "(soundbox pki device ID, then soundbox device provision)" % identity_dir)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def client_context(identity_dir):
    """An SSLContext that trusts only ca.der and presents device.der / device.key.der."""
    if old_layout(identity_dir):
        raise TlsSetupError(old_layout_reason(identity_dir))
    missing = missing_files(identity_dir)
    if missing:
        raise TlsSetupError("missing %s in %s" % (", ".join(missing), identity_dir))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # verify_mode is a real attribute on MicroPython's SSLContext; its stubs omit it.
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    try:
        ctx.load_verify_locations(cadata=_read(identity_dir + "/ca.der"))
        ctx.load_cert_chain(_read(identity_dir + "/device.der"), _read(identity_dir + "/device.key.der"))
    except (OSError, ValueError, TypeError) as e:  # MicroPython has no SSLError; CPython's is an OSError
        if sys.implementation.name != "micropython":
            # CPython takes the bytes for file names and fails on them ("embedded null byte").
            raise TlsSetupError("CPython's ssl cannot load a certificate chain from DER bytes: on CPython "
                                "build the context with soundbox_sim.link.der_context(%r)" % identity_dir)
        raise TlsSetupError("cannot load TLS identity from %s: %s" % (identity_dir, e))
    if ctx.verify_mode != ssl.CERT_REQUIRED:  # type: ignore[attr-defined]
        raise TlsSetupError("TLS context would not verify the server")
    return ctx


def connector(identity_dir, server_hostname, open_connection=None):
    """A transport factory (host, port) -> (reader, writer) over mutual TLS.

    The identity is loaded again on every connect, so a rotated certificate is
    picked up at the next reconnect without restarting the app.
    """
    if open_connection is None:
        import asyncio  # here, not at the top: the core test VM has no asyncio package

        open_connection = asyncio.open_connection

    async def open_tls(host, port):
        ctx = client_context(identity_dir)
        return await open_connection(host, port, ssl=ctx, server_hostname=server_hostname)

    return open_tls
