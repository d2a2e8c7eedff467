"""TLS for the device link, built the same way on MicroPython (1.22+) and CPython.

Always: the server's certificate is verified against our pinned CA
(CERT_REQUIRED; MicroPython's client default is CERT_NONE, so it is set
explicitly and checked), the server name is sent (SNI) and checked, and the
device's own certificate and key are presented (mutual TLS).
"""

import os

import ssl

IDENTITY_FILES = ("ca.pem", "device.pem", "device.key")


class TlsSetupError(Exception):
    """The device's TLS identity is missing or unusable (found before any network traffic)."""


def missing_files(identity_dir):
    """Names of the identity files that are not in identity_dir."""
    missing = []
    for name in IDENTITY_FILES:
        try:
            os.stat(identity_dir + "/" + name)
        except OSError:
            missing.append(name)
    return missing


def client_context(identity_dir):
    """An SSLContext that trusts only ca.pem and presents device.pem/device.key."""
    missing = missing_files(identity_dir)
    if missing:
        raise TlsSetupError("missing %s in %s" % (", ".join(missing), identity_dir))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # verify_mode is a real attribute on MicroPython's SSLContext; its stubs omit it.
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    try:
        ctx.load_verify_locations(cafile=identity_dir + "/ca.pem")
        ctx.load_cert_chain(identity_dir + "/device.pem", identity_dir + "/device.key")
    except (OSError, ValueError) as e:  # MicroPython has no SSLError; CPython's is an OSError
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
