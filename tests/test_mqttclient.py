"""The asyncio MQTT driver against real TCP peers: a private mosquitto, and a
bare listener that accepts and hangs up (a proxy with no broker behind it)."""

import asyncio

from soundbox import mqttclient
from soundbox import mqttsession as ms
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

        asked = []

        async def on_connect(client, session_present):
            asked.append(await client.subscribe([("sb/t/#", 1)]))

        session = Session("sb-0001", max_inflight=2, max_queued=2)
        client = Client(session, broker.host, broker.port, on_message, on_connect, log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: asked and asked[0] not in session._requests)  # its SUBACK is in
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


class Watcher:
    """A plain subscriber on the test broker: what reached it, in order."""

    def __init__(self, broker, topic_filter):
        self.got = []
        self.ready = False
        self.filter = topic_filter
        self.client = Client(Session("watcher", clean=True), broker.host, broker.port, self._on_message,
                             self._on_connect, log=lambda m: None, on_notice=self._on_notice)

    async def _on_message(self, msg):
        self.got.append(msg.payload)

    async def _on_connect(self, client, session_present):
        await client.subscribe([(self.filter, 1)])

    def _on_notice(self, ev):
        pass

    async def start(self):
        self.task = asyncio.create_task(self.client.run())
        await until(lambda: self.client.connected)
        # The SUBACK: a retained marker comes back only once the subscription is live.
        await self.client.publish(self.filter.rstrip("#") + "marker", b"m", 1, retain=True)
        await until(lambda: b"m" in self.got)

    async def stop(self):
        await self.client.stop()
        self.task.cancel()


def test_a_full_window_at_connect_refuses_the_new_publish_at_once_and_the_link_carries_on(broker):
    """Before: on_connect's status publish waited for room while the read loop that reads
    the PUBACKs sat waiting on it: connected for ever, nothing moving."""
    async def main():
        watcher = Watcher(broker, "sb/w/#")
        await watcher.start()
        refusals = []

        async def on_connect(client, session_present):
            try:
                await client.publish("sb/w/status", b"online", 1)
            except ms.QueueFull as e:
                refusals.append(str(e))

        session = Session("sb-0001", max_inflight=1, max_queued=1)
        session.publish("sb/w/ack", b"a1", 1)  # accepted while offline: fills the window
        session.publish("sb/w/ack", b"a2", 1)
        client = Client(session, broker.host, broker.port, None, on_connect, log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: b"a1" in watcher.got and b"a2" in watcher.got)
        assert refusals and "read by this task" in refusals[0]
        assert client.connected and session.inflight == [] and session.queued == []
        await client.publish("sb/w/status", b"later", 1)  # room again: taken
        await until(lambda: b"later" in watcher.got)
        assert b"online" not in watcher.got  # refused means never sent
        await client.stop()
        task.cancel()
        await watcher.stop()

    asyncio.run(main())


def test_a_publish_from_an_app_task_waits_for_room_for_a_bounded_time(monkeypatch):
    monkeypatch.setattr(mqttclient, "ROOM_WAIT_S", 0.3)

    async def main():
        session = Session("sb-0001", max_inflight=1, max_queued=1)
        client = Client(session, "127.0.0.1", 9, on_message=None, log=lambda m: None)  # never run
        await client.publish("t", b"1", 1)
        await client.publish("t", b"2", 1)
        try:
            await client.publish("t", b"3", 1)
        except ms.QueueFull as e:
            assert "for 0 s" in str(e) or "for 0.3 s" in str(e), e
        else:
            raise AssertionError("a full window took a third publish")
        try:  # bad input is refused at once, not after waiting for room
            await asyncio.wait_for(client.publish("a/+", b"x", 1), 0.2)
        except ValueError as e:
            assert "wildcard" in str(e)
        assert [p.payload for p in session.queued] == [b"1", b"2"]

    asyncio.run(main())


def test_the_backoff_grows_while_the_broker_drops_us_right_after_connack():
    """Before: every CONNACK reset it, so a link dropped at once made 22 reconnects in 5 s."""
    async def main():
        connects = []

        async def connack_and_hang_up(reader, writer):
            await reader.read(1024)  # CONNECT
            connects.append(1)
            writer.write(b"\x20\x02\x00\x00")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(connack_and_hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Client(Session("sb-0001"), "127.0.0.1", port, on_message=None,
                        backoff=Backoff(base_ms=1, cap_ms=40), log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: len(connects) >= 6)
        assert client.backoff.failures >= 5, client.backoff.failures
        await client.stop()
        task.cancel()
        server.close()

    asyncio.run(main())


def test_the_backoff_starts_again_after_the_broker_acknowledged_a_publish(broker):
    async def main():
        ends = []
        client = Client(Session("sb-0001"), broker.host, broker.port, on_message=None,
                        on_disconnect=lambda: ends.append(client.backoff.failures),
                        backoff=Backoff(base_ms=1, cap_ms=40), log=lambda m: None)
        client.backoff.failures = 20
        task = asyncio.create_task(client.run())
        await until(lambda: client.connected)
        await client.publish("sb/x/ack", b"1", 1)
        await until(lambda: client.session.inflight == [])
        client._writer.transport.abort()  # the link breaks
        await until(lambda: ends)
        assert ends == [0]  # the next reconnect waits the shortest delay
        await client.stop()
        task.cancel()

    asyncio.run(main())


def test_a_refused_subscription_reaches_the_app_with_its_filter(tls_broker, pki):
    async def main():
        notices = []

        async def on_connect(client, session_present):
            await client.subscribe([("sb/sb-0001/notify", 1), ("$share/cloud/sb/+/ack", 1)])

        client = Client(Session("sb-0001"), tls_broker.host, tls_broker.port, None, on_connect,
                        tls=True, open_connection=_tls_opener(pki, "sb-0001", pki.path("ca.pem")),
                        log=lambda m: None, on_notice=notices.append)
        task = asyncio.create_task(client.run())
        await until(lambda: notices)
        (ev,) = notices
        assert isinstance(ev, ms.Subscribed) and ev.refused == [("$share/cloud/sb/+/ack", 0x80)]
        assert ev.codes == [1, 0x80] and client.connected
        await client.unsubscribe(["sb/sb-0001/notify"])
        await client.stop()
        task.cancel()

    asyncio.run(main())


def test_bad_requests_are_refused_before_anything_is_sent(broker):
    async def main():
        client = Client(Session("sb-0001"), broker.host, broker.port, on_message=None, log=lambda m: None)
        task = asyncio.create_task(client.run())
        await until(lambda: client.connected)
        for call, why in ((client.publish("a/+", b"x", 1), "wildcard"), (client.publish("", b"x", 1), "empty"),
                          (client.publish("a\x00", b"x", 1), "NUL"), (client.publish("\ud800", b"x", 1), "UTF-8"),
                          (client.publish("t" * 65536, b"x", 1), "65535"), (client.publish("t", b"x", 2), "qos"),
                          (client.subscribe([("t", 2)]), "qos"), (client.subscribe([]), "non-empty"),
                          (client.subscribe([("a/#/b", 1)]), "'#'"), (client.unsubscribe(["a+"]), "'+'")):
            try:
                await call
            except ValueError as e:
                assert why in str(e), (why, e)
            else:
                raise AssertionError("accepted: " + why)
        assert client.session.inflight == [] and client.session.queued == []
        await client.publish("sb/x/ack", b"fine", 1)  # the link is still good
        await until(lambda: client.session.inflight == [])
        assert client.connected
        await client.stop()
        task.cancel()

    asyncio.run(main())
