"""The asyncio MQTT driver against real TCP peers: a private mosquitto, and a
bare listener that accepts and hangs up (a proxy with no broker behind it)."""

import asyncio

from soundbox.backoff import Backoff
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session


async def until(check, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met within %.0f s" % timeout
        await asyncio.sleep(0.02)


def test_closes_before_connack_over_plain_tcp_are_transient_not_a_refusal():
    async def main():
        attempts = []

        async def hang_up(reader, writer):
            attempts.append(1)
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Client(Session("sb-0001"), "127.0.0.1", port, on_message=None,
                        backoff=Backoff(base_ms=10, cap_ms=50), log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: len(attempts) >= 6)
        assert client.refused is None and client.backoff.failures < 31
        await client.stop()
        task.cancel()
        server.close()

    asyncio.run(main())


def test_publish_waits_for_room_instead_of_dropping(broker):
    async def main():
        got = []

        async def on_message(msg):
            got.append(msg.payload)

        async def on_connect(client, session_present):
            await client.subscribe([("sb/t/#", 1)])

        session = Session("sb-0001", max_inflight=2, max_queued=2)
        client = Client(session, broker.host, broker.port, on_message, on_connect, log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: client.connected)
        await asyncio.sleep(0.2)  # SUBACK
        await asyncio.gather(*(client.publish("sb/t/x", b"%d" % i, 1) for i in range(40)))
        await until(lambda: len(got) == 40)
        assert sorted(int(p) for p in got) == list(range(40))
        assert len(session.inflight) + len(session.queued) <= 4
        await client.stop()
        task.cancel()

    asyncio.run(main())


def _tls_opener(pki, device_id, ca_path, server_hostname="localhost"):
    """open_connection over mutual TLS built with CPython's ssl from the bundle's PEM files."""
    import os
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=ca_path)
    d = pki.device_dir(device_id)
    ctx.load_cert_chain(os.path.join(d, "device.pem"), os.path.join(d, "device.key"))
    return lambda host, port: asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_hostname)


def _run_client_until(client, check):
    async def main():
        task = asyncio.create_task(client.run())
        try:
            await until(check)
        finally:
            await client.stop()
            task.cancel()

    asyncio.run(main())


def test_refused_tcp_connects_over_tls_are_never_a_refusal(pki):
    from soundbox_tools import procs

    port = procs.free_port()  # nothing listens: every connect is refused
    client = Client(Session("sb-0001"), "127.0.0.1", port, on_message=None, tls=True,
                    open_connection=_tls_opener(pki, "sb-0001", pki.path("ca.pem")),
                    backoff=Backoff(base_ms=5, cap_ms=20), log=lambda m: None)
    attempts = []
    client.log = attempts.append
    _run_client_until(client, lambda: len(attempts) >= 6)
    assert client.refused is None and client.backoff.failures < 31, attempts


def test_an_untrusted_broker_certificate_is_a_long_backoff_blamed_on_the_server(tls_broker, pki, tmp_path):
    from soundbox_tools.pki import Pki

    for name, opener in (("other CA", _tls_opener(pki, "sb-0001", Pki(tmp_path / "other").init().path("ca.pem"))),
                         ("wrong name", _tls_opener(pki, "sb-0001", pki.path("ca.pem"), "wrong.example"))):
        client = Client(Session("sb-0001"), tls_broker.host, tls_broker.port, on_message=None, tls=True,
                        open_connection=opener, log=lambda m: None)
        _run_client_until(client, lambda: client.refused is not None)
        assert client.refused.server and client.backoff.failures >= 31, name  # the longest delay
        assert "broker certificate not trusted" in client.refused.reason, client.refused.reason


class Device:
    """A device-like client: persistent session, subscribed to its topics at QoS 1,
    recording what it gets, the notices and every CONNACK."""

    def __init__(self, broker, device_id="sb-0001"):
        self.messages, self.notices, self.connects = [], [], 0
        self.topics = [("sb/%s/notify" % device_id, 1), ("sb/%s/ota/job" % device_id, 1)]
        self.subscribed = False
        self.client = Client(Session(device_id, clean=False), broker.host, broker.port, self._on_message,
                             self._on_connect, log=lambda m: None, on_notice=self.notices.append)

    async def _on_message(self, msg):
        self.messages.append((msg.topic, msg.payload))

    async def _on_connect(self, client, session_present):
        self.connects += 1
        await client.subscribe(self.topics)
        self.subscribed = True

    async def start(self):
        self.task = asyncio.create_task(self.client.run())
        await until(lambda: self.subscribed)

    async def stop(self):
        await self.client.stop()
        self.task.cancel()


async def publisher(broker):
    client = Client(Session("cloud-test", max_packet=1 << 20), broker.host, broker.port, on_message=None,
                    log=lambda m: None)
    task = asyncio.create_task(client.run())
    await until(lambda: client.connected)
    return client, task


def test_an_oversized_message_is_skipped_reported_acked_and_not_redelivered(broker):
    async def main():
        device = Device(broker)
        await device.start()
        cloud, cloud_task = await publisher(broker)
        await cloud.publish("sb/sb-0001/ota/job", b"J" * 100 * 1024, 1)
        await cloud.publish("sb/sb-0001/notify", b"first", 1)
        await until(lambda: (device.client.session.state, len(device.messages)) == ("connected", 1))
        (notice,) = device.notices
        assert notice.topic == "sb/sb-0001/ota/job" and notice.size > 100 * 1024 and notice.acked
        assert device.messages == [("sb/sb-0001/notify", b"first")] and device.connects == 1
        await device.stop()

        # A fresh client on the same persistent session: anything unacked would come first.
        device = Device(broker)
        await device.start()
        await cloud.publish("sb/sb-0001/notify", b"second", 1)
        await until(lambda: len(device.messages) == 1)
        assert device.messages == [("sb/sb-0001/notify", b"second")] and device.notices == []
        await device.stop()
        await cloud.stop()
        cloud_task.cancel()

    asyncio.run(main())
