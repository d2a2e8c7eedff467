"""A simulated device's network link: the HAL's `open_connection`, timed and breakable.

It opens the TCP connection itself (so TCP connect and TLS handshake are timed apart),
optionally through the worker's fault proxy (announcing the device id in a one-line
preamble the proxy strips), and keeps the connection's socket so a fault can take it
away the way a power cut or a wedged device does: without a FIN or a TLS close_notify.

Thousands of links share one process, so what they would each hold the same copy of is
held once: one TLS context per CA, each connection given its device's own certificate
(install_context_cache). The connection itself is a lean stream that lets OpenSSL drive
the socket (sockstream.py).
"""

import asyncio
import os
import socket
import time

from soundbox_sim import sockstream
from soundbox_sim.metrics import Counters, LogHistogram

PREAMBLE = b"SBSIM %s\n"  # read and stripped by soundbox_sim.netfaults.FaultProxy


class LinkStats:
    """One worker's connect figures, shared by all its devices."""

    def __init__(self):
        self.counters = Counters()
        self.tcp = LogHistogram()  # TCP connect
        self.tls = LogHistogram()  # TLS handshake
        self.connack = LogHistogram()  # CONNECT sent -> CONNACK received (app's on_connect)

    def histograms(self):
        return {"tcp_connect": self.tcp, "tls_handshake": self.tls, "connect_to_connack": self.connack}


def _ms(since):
    return (time.monotonic() - since) * 1000


class Link:
    __slots__ = ("device_id", "stats", "proxy", "attempts", "_opened", "_sock_fd", "_transport", "_held")

    def __init__(self, device_id, stats, proxy=None):
        self.device_id = device_id
        self.stats = stats
        self.proxy = proxy  # (host, port) of the fault proxy, or None for a direct link
        self.attempts = 0  # connection attempts since the device (re)started
        self._opened = None  # monotonic time the transport was ready (CONNECT goes out now)
        self._sock_fd = None  # fd of the current connection's socket
        self._transport = None
        self._held = None  # dup'd fds of connections "cut" without a FIN (power cut, wedged)

    def fresh_start(self):
        """The device restarted: its next attempt is a first attempt again."""
        self.attempts = 0

    async def open_connection(self, host, port, ssl=None, server_hostname=None):
        loop = asyncio.get_running_loop()
        counters = self.stats.counters
        counters.add("connect.attempted")
        if self.attempts:
            counters.add("connect.retried")
        self.attempts += 1
        started = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # asyncio.open_connection(host, port) would turn Nagle off; with a socket of our own
        # it is ours to do, or every ack waits ~40 ms for the broker's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.proxy or (host, port))
            if self.proxy:
                await loop.sock_sendall(sock, PREAMBLE % self.device_id.encode())
        except BaseException:
            sock.close()
            counters.add("connect.failed")
            raise
        self.stats.tcp.add(_ms(started))
        if ssl:
            tls_started = time.monotonic()
            try:
                sock = ssl.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
                await sockstream.handshake(sock)
            except BaseException:
                sock.close()
                counters.add("connect.failed")
                raise
            self.stats.tls.add(_ms(tls_started))
        stream = sockstream.SockStream(sock)
        self._sock_fd = sock.fileno()
        self._transport = stream
        self._opened = time.monotonic()
        return stream, stream

    def on_connack(self):
        if self._opened is not None:
            self.stats.connack.add(_ms(self._opened))
        self._opened = None
        self.stats.counters.add("connect.succeeded")
        self.release_held()  # the broker has the new connection: the old one may go now

    def on_closed(self, had_connack):
        if not had_connack:
            self.stats.counters.add("connect.failed")
        self._opened = None

    def cut_silently(self):
        """Tear the current connection down on our side without sending anything (no TLS
        close_notify, no FIN): a dup'd fd keeps the kernel socket open, so the peer sees a
        half-open link until its keepalive gives up, as after a power cut."""
        transport, self._transport = self._transport, None
        if self._sock_fd is not None and transport is not None and not transport.is_closing():
            try:
                self._held = self._held or []
                self._held.append(os.dup(self._sock_fd))
            except OSError:
                pass  # already closed: nothing to hold
            transport.abort()  # no flush, no close_notify; the held fd stops the FIN
        self._sock_fd = None

    def release_held(self):
        while self._held:
            try:
                os.close(self._held.pop())
            except OSError:
                pass


# ---- mutual TLS for thousands of identities in one process -----------------------------
#
# Measured per device (2,000 mTLS devices, OpenSSL 3.0, CPython 3.11): an SSLContext of
# its own costs about 24 KiB of RSS (SSL_CTX 12.5, its copy of the CA 5, its certificate
# and key 7), next to about 45 KiB for the connection itself. Python's ssl can only put a
# client certificate on a context, so the simulator keeps ONE context per CA (trust
# settings exactly as soundbox.tls builds them) and gives each connection its device's
# certificate and key through the libssl calls Python does not wrap (SSL_use_certificate,
# SSL_use_PrivateKey). The files are parsed once per identity (DER decoding through
# OpenSSL 3's decoders took 0.5 ms, twice per connect: a third of a device's ramp CPU) and
# the parsed pair is handed to every connection; the files are looked at (stat) at every
# connect, so a rotated identity is parsed again, as the SDK reads it again. The broker
# sees the same handshake. Where the
# libssl Python uses cannot be reached safely, each device gets its own context (cached
# while its files are unchanged), as before.

_identities: dict = {}  # identity dir -> (files' (mtime_ns, size), SharedCaTls or SSLContext)
_shared: dict = {}  # CA file bytes -> SSLContext with that CA and no certificate


def _file_key(identity_dir, names):
    return tuple((st.st_mtime_ns, st.st_size) for st in
                 (os.stat(identity_dir + "/" + name) for name in names))


class _LibSsl:
    """The libssl that CPython's _ssl module is linked against, through ctypes.

    Reaching the SSL* inside an ssl.SSLObject relies on the C layout of _ssl's objects
    (a context's SSL_CTX* and a connection's SSL* right after the object header, the
    same in CPython 3.8 to 3.13); _reach_libssl() proves it on a throwaway connection
    before anything depends on it, and every use checks again, by asking libssl whether
    that SSL* belongs to that SSL_CTX*.
    """

    EVP_PKEY_EC = 408  # NID_X9_62_id_ecPublicKey: the devices' keys are P-256

    def __init__(self):
        import ctypes
        import ssl

        self.ctypes = ctypes
        path = _loaded_libssl()
        if path is None:
            raise OSError("no shared libssl in this process (a static _ssl?)")
        lib = ctypes.CDLL(path)  # the already loaded copy: dlopen hands back the same one
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            raise OSError("%s is not the OpenSSL the ssl module was built with" % path)
        ptr, cstr = ctypes.c_void_p, ctypes.c_char_p
        lib.SSL_get_SSL_CTX.restype = ptr
        lib.SSL_get_SSL_CTX.argtypes = [ptr]
        der = ctypes.POINTER(cstr)  # d2i_*: a pointer to the bytes, moved past what was read
        lib.d2i_X509.restype = ptr
        lib.d2i_X509.argtypes = [ptr, der, ctypes.c_long]
        lib.d2i_PrivateKey.restype = ptr
        lib.d2i_PrivateKey.argtypes = [ctypes.c_int, ptr, der, ctypes.c_long]
        lib.X509_check_private_key.argtypes = [ptr, ptr]
        lib.X509_free.argtypes = lib.EVP_PKEY_free.argtypes = [ptr]
        lib.SSL_use_certificate.argtypes = lib.SSL_use_PrivateKey.argtypes = [ptr, ptr]
        lib.ERR_clear_error.argtypes = []
        self.lib = lib
        self.head = object.__basicsize__  # PyObject_HEAD (larger on debug builds)
        self.word = ctypes.sizeof(ptr)

    def _pointer(self, obj, offset):
        return self.ctypes.c_void_p.from_address(id(obj) + offset).value

    def ssl_of(self, sslobject, context):
        """The SSL* of an ssl.SSLObject or SSLSocket, checked against its context's SSL_CTX*."""
        ssl_ptr = self._pointer(sslobject._sslobj, self.head + self.word)
        ctx_ptr = self._pointer(context, self.head)
        if not ssl_ptr or not ctx_ptr or self.lib.SSL_get_SSL_CTX(ssl_ptr) != ctx_ptr:
            raise OSError("unexpected layout of _ssl objects")
        return ssl_ptr

    def parse_identity(self, cert_der, key_der):
        """(X509*, EVP_PKEY*) from a device's DER certificate and EC key, or None when
        either does not parse or they do not match. The caller frees them (free_identity)."""
        lib, c = self.lib, self.ctypes
        cert = lib.d2i_X509(None, c.byref(c.c_char_p(cert_der)), len(cert_der))
        key = lib.d2i_PrivateKey(self.EVP_PKEY_EC, None, c.byref(c.c_char_p(key_der)), len(key_der))
        if cert and key and lib.X509_check_private_key(cert, key) == 1:
            return cert, key
        self.free_identity(cert, key)
        lib.ERR_clear_error()  # leave no stale error for the next ssl call to trip on
        return None

    def free_identity(self, cert, key):
        if cert:
            self.lib.X509_free(cert)
        if key:
            self.lib.EVP_PKEY_free(key)

    def use_identity(self, ssl_ptr, cert, key):
        """Put a parsed certificate and key on one connection (it takes its own references)."""
        lib = self.lib
        if not (lib.SSL_use_certificate(ssl_ptr, cert) == 1 and lib.SSL_use_PrivateKey(ssl_ptr, key) == 1):
            lib.ERR_clear_error()


def _loaded_libssl():
    import _ssl  # noqa: F401  (loads libssl)

    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "/libssl.so" in path:
                    return path
    except OSError:
        pass
    return None


_libssl = None  # _LibSsl once probed, False when it cannot be used


def _reach_libssl():
    global _libssl
    if _libssl is None:
        import ssl
        import sys

        _libssl = False
        if sys.implementation.name == "cpython" and (3, 8) <= sys.version_info[:2] <= (3, 13):
            try:
                lib = _LibSsl()
                probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                obj = probe.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="probe")
                lib.ssl_of(obj, probe)
                _libssl = lib
            except (OSError, AttributeError, ValueError):
                pass
    return _libssl or None


class SharedCaTls:
    """What a device's link gets as its `ssl=` argument: it only calls wrap_socket. The
    connection is made from the CA's shared context, then given this device's own
    certificate and key. Trust (CERT_REQUIRED, hostname check) is the shared context's."""

    __slots__ = ("context", "cert", "key")

    def __init__(self, context, cert, key):
        self.context = context
        self.cert, self.key = cert, key  # X509*, EVP_PKEY*: this object's references

    def __del__(self):  # its identity was rotated (or the fleet is gone)
        if _libssl:
            _libssl.free_identity(self.cert, self.key)

    @property
    def verify_mode(self):
        return self.context.verify_mode

    @property
    def check_hostname(self):
        return self.context.check_hostname

    def wrap_socket(self, sock, server_hostname=None, do_handshake_on_connect=True):
        wrapped = self.context.wrap_socket(sock, server_hostname=server_hostname,
                                           do_handshake_on_connect=do_handshake_on_connect)
        # Parsed and checked when this object was made (client_context sees any change
        # to the files, and makes a new one).
        _libssl.use_identity(_libssl.ssl_of(wrapped, self.context), self.cert, self.key)
        return wrapped


def _shared_context(ca_path):
    """The context for every device that trusts this CA: as soundbox.tls.client_context
    makes it, without a certificate of its own."""
    import ssl

    with open(ca_path, "rb") as f:
        ca = f.read()
    ctx = _shared.get(ca)
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=ca)  # DER bytes
        _shared[ca] = ctx
    return ctx


def _shared_ca_tls(identity_dir, tls):
    """A SharedCaTls for identity_dir, its files checked now (as the SDK checks them when it
    builds a context): raises tls.TlsSetupError with the SDK's reasons."""
    try:
        shared = _shared_context(identity_dir + "/ca.der")
        with open(identity_dir + "/device.der", "rb") as f:
            cert = f.read()
        with open(identity_dir + "/device.key.der", "rb") as f:
            key = f.read()
    except (OSError, ValueError) as e:
        raise tls.TlsSetupError("cannot load TLS identity from %s: %s" % (identity_dir, e))
    parsed = _libssl.parse_identity(cert, key)
    if parsed is None:
        raise tls.TlsSetupError("cannot load TLS identity from %s: bad or mismatched "
                                "device.der / device.key.der" % identity_dir)
    return SharedCaTls(shared, *parsed)


def der_context(identity_dir):
    """soundbox.tls.client_context for CPython: the same DER identity, the same checks.
    CPython's ssl loads a chain only from a PEM file, so the DER files are turned into PEM
    in an anonymous in-memory file (memfd): no private key is written to disk."""
    import base64
    import ssl

    from soundbox import tls

    if tls.old_layout(identity_dir):
        raise tls.TlsSetupError(tls.old_layout_reason(identity_dir))
    missing = tls.missing_files(identity_dir)
    if missing:
        raise tls.TlsSetupError("missing %s in %s" % (", ".join(missing), identity_dir))
    try:
        with open(identity_dir + "/ca.der", "rb") as f:
            ca = f.read()
        with open(identity_dir + "/device.der", "rb") as f:
            pem = ssl.DER_cert_to_PEM_cert(f.read())
        with open(identity_dir + "/device.key.der", "rb") as f:
            body = base64.encodebytes(f.read()).decode("ascii")
        pem += "-----BEGIN PRIVATE KEY-----\n%s-----END PRIVATE KEY-----\n" % body
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=ca)
        fd = os.memfd_create("soundbox-identity")
        try:
            os.write(fd, pem.encode("ascii"))
            ctx.load_cert_chain("/proc/self/fd/%d" % fd)
        finally:
            os.close(fd)
    except (OSError, ValueError) as e:
        raise tls.TlsSetupError("cannot load TLS identity from %s: %s" % (identity_dir, e))
    return ctx


def install_context_cache():
    """Make the SDK's TLS connector cheap for a fleet in one process: each device's
    connection comes from one shared context per CA with the device's own certificate
    (see above), or, where libssl cannot be reached, from the device's own context,
    cached. Either is rebuilt when the identity files change (mtime or size, checked at
    every connect), so a rotated certificate is picked up at the next reconnect, as on
    the device.

    The SDK builds a new context per connect: right for a box with one identity, but in
    a worker running thousands that was about 40% of the CPU of a mutual-TLS ramp.
    """
    from soundbox import tls

    if getattr(tls.client_context, "cached", False):
        return
    shared = _reach_libssl() is not None

    def client_context(identity_dir):
        try:
            key = _file_key(identity_dir, tls.IDENTITY_FILES)
        except OSError:
            return der_context(identity_dir)  # missing files (or the old layout): it says which
        hit = _identities.get(identity_dir)
        if hit is not None and hit[0] == key:
            return hit[1]
        ctx = _shared_ca_tls(identity_dir, tls) if shared else der_context(identity_dir)
        _identities[identity_dir] = (key, ctx)
        return ctx

    client_context.cached = True
    client_context.shared_ca = shared
    tls.client_context = client_context
