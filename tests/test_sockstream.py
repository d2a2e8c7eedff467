"""The simulator's lean socket stream (simulator/soundbox_sim/sockstream.py) against a real
TLS 1.3 server using the project's PKI: session tickets are not end of stream, a large
write drains through a full socket, reading pauses and resumes under a flood, close sends
close_notify and abort sends nothing; all over mutual TLS through the simulator's link."""

import asyncio
import socket
import ssl

from soundbox_sim import sockstream
from soundbox_sim.link import Link, LinkStats, der_context

MiB = 1 << 20


def server_context(pki):
    files = pki.files("broker")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files["cert"], files["key"])
    ctx.load_verify_locations(files["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as the broker
    return ctx


async def serve(pki, handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context(pki))
    return server, server.sockets[0].getsockname()[1]


async def open_device_stream(pki, port, device="sb-0001"):
    ctx = der_context(pki.device_dir(device))  # the device's DER identity, on CPython
    return await Link(device, LinkStats()).open_connection("127.0.0.1", port, ssl=ctx,
                                                          server_hostname="localhost")


def test_echo_survives_session_tickets_and_a_large_write(pki):
    async def main():
        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server, port = await serve(pki, echo)
        reader, writer = await open_device_stream(pki, port)
        # TLS 1.3 servers send session tickets after the handshake: records with no app
        # bytes. A read must wait past them, not return b"" (EOF).
        try:
            early = await asyncio.wait_for(reader.read(100), 0.5)
        except asyncio.TimeoutError:
            early = None
        assert early is None
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(100), 5) == b"ping"

        payload = bytes(range(256)) * (4 * MiB // 256)  # more than the socket buffers hold
        writer.write(payload)
        assert writer.get_write_buffer_size() > 0  # the socket could not take it all at once
        received = bytearray()

        async def collect():
            while len(received) < len(payload):
                received.extend(await reader.read(65536))

        await asyncio.wait_for(asyncio.gather(writer.drain(), collect()), 30)
        assert writer.get_write_buffer_size() == 0
        assert bytes(received) == payload
        writer.close()
        server.close()

    asyncio.run(main())


def test_reading_pauses_under_a_flood_and_loses_nothing(pki):
    async def main():
        payload = bytes(range(251)) * (2 * MiB // 251)

        async def flood(reader, writer):
            writer.write(payload)
            await writer.drain()
            writer.close()

        server, port = await serve(pki, flood)
        reader, writer = await open_device_stream(pki, port)
        await asyncio.sleep(0.3)  # the flood arrives while nobody reads
        assert reader._buffered <= sockstream.PAUSE_ABOVE + sockstream.READ_CHUNK  # paused, not hoarding
        received = bytearray()
        while data := await asyncio.wait_for(reader.read(4096), 10):
            assert len(data) <= 4096
            received.extend(data)
        assert bytes(received) == payload  # then EOF: b""
        writer.close()
        server.close()

    asyncio.run(main())


def test_close_sends_close_notify_and_abort_sends_nothing(pki):
    """The raw TCP bytes the server gets after the handshake: close() sends one TLS record
    (the close_notify alert, which TLS 1.3 wraps as application data), abort() nothing:
    a power cut says no goodbye."""

    async def main(mode):
        raw = bytearray()
        done = asyncio.Event()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        loop = asyncio.get_running_loop()

        async def accept():
            conn, _ = await loop.sock_accept(listener)
            tls_server = server_context(pki).wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            await sockstream.handshake(tls_server)
            tls_server.setblocking(False)
            # after the handshake, take the bytes off the socket unread by OpenSSL
            sock = socket.socket(fileno=tls_server.detach())
            sock.setblocking(False)
            while True:
                data = await loop.sock_recv(sock, 4096)
                if not data:
                    break
                raw.extend(data)
            sock.close()
            done.set()

        task = asyncio.ensure_future(accept())
        _, writer = await open_device_stream(pki, port)
        await asyncio.sleep(0.2)
        writer.close() if mode == "close" else writer.abort()
        await asyncio.wait_for(done.wait(), 5)
        await task
        listener.close()
        return bytes(raw)

    closed = asyncio.run(main("close"))
    aborted = asyncio.run(main("abort"))
    assert closed[:3] == b"\x17\x03\x03"  # one application-data record: 5 + alert 2 + type 1 + tag 16
    assert len(closed) == 5 + int.from_bytes(closed[3:5], "big") == 24
    assert aborted == b""
