"""MQTT 5, opted into per connection (Session(protocol=5)), against a real mosquitto
(2.0, which speaks 5) started by the test: Maximum Packet Size, reason codes, message
and session expiry, Receive Maximum. 3.1.1 stays the default (tests/test_mqttclient.py)."""

import asyncio

from test_mqttclient import _tls_opener, until

from soundbox import mqttcodec as c
from soundbox import mqttsession as ms
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session


class Box:
    """A v5 client recording messages, notices and connects."""

    def __init__(self, broker, client_id="sb-0001", topics=(), session=None, **kw):
        self.messages, self.notices, self.connects = [], [], []
        self.topics = list(topics)
        self.session = session or Session(client_id, protocol=5, **kw)
        self.client = Client(self.session, broker.host, broker.port, self._on_message, self._on_connect,
                             log=lambda m: None, on_notice=self.notices.append)

    async def _on_message(self, msg):
        self.messages.append((msg.topic, msg.payload))

    async def _on_connect(self, client, session_present):
        if self.topics:
            await client.subscribe(self.topics)
        self.connects.append(session_present)

    async def start(self):
        self.task = asyncio.create_task(self.client.run())
        await until(lambda: self.connects)
        return self

    async def stop(self):
        await self.client.stop()
        self.task.cancel()


async def subscribed(box, marker_topic):
    """Wait until box's subscription is live: a retained marker comes back through it."""
    await box.client.publish(marker_topic, b"marker", 1, retain=True)
    await until(lambda: (marker_topic, b"marker") in box.messages)


def test_the_broker_drops_what_is_over_our_maximum_packet_size_and_the_box_stays_up(broker):
    async def main():
        box = await Box(broker, topics=[("sb/sb-0001/#", 1)], max_packet=65536, clean=False).start()
        await subscribed(box, "sb/sb-0001/m")
        cloud = await Box(broker, "cloud-5").start()
        await cloud.client.publish("sb/sb-0001/ota/job", b"J" * 100 * 1024, 1)
        await cloud.client.publish("sb/sb-0001/notify", b"next", 1)
        await until(lambda: ("sb/sb-0001/notify", b"next") in box.messages)
        assert [m for m in box.messages if m[0] == "sb/sb-0001/ota/job"] == []
        assert box.notices == [] and box.connects == [False]  # never sent, so nothing to skip
        assert box.session.protocol == 5 and box.client.connected
        await box.stop()
        await cloud.stop()

    asyncio.run(main())


def test_reason_codes_say_not_authorised_instead_of_a_silent_drop(tls_broker, pki):
    async def main():
        notices = []

        async def on_connect(client, session_present):
            await client.subscribe([("sb/sb-0001/notify", 1), ("$share/cloud/sb/+/ack", 1)])

        session = Session("sb-0001", protocol=5)
        client = Client(session, tls_broker.host, tls_broker.port, None, on_connect, tls=True,
                        open_connection=_tls_opener(pki, "sb-0001", pki.path("ca.pem")),
                        log=lambda m: None, on_notice=notices.append)
        task = asyncio.create_task(client.run())
        await until(lambda: notices)
        (sub,) = notices
        assert isinstance(sub, ms.Subscribed) and sub.refused == [("$share/cloud/sb/+/ack", 0x87)], sub.codes
        await client.publish("sb/sb-0002/ack", b"forged", 1)  # another device's topic
        await until(lambda: len(notices) == 2)
        assert isinstance(notices[1], ms.Delivered) and notices[1].code == 0x87, notices[1]
        assert "not authorised" in notices[1].reason and session.inflight == [] and client.connected
        await client.stop()
        task.cancel()

    asyncio.run(main())


def test_an_expired_message_is_dropped_by_the_broker_not_delivered_late(broker):
    async def main():
        box = await Box(broker, topics=[("sb/sb-0001/notify", 1)], clean=False).start()
        await box.stop()  # offline: the broker keeps its session (expiry: as long as allowed)
        cloud = await Box(broker, "cloud-5").start()
        await cloud.client.publish("sb/sb-0001/notify", b"stale", 1, expiry_s=1)
        await cloud.client.publish("sb/sb-0001/notify", b"fresh", 1, expiry_s=3600)
        await until(lambda: cloud.session.inflight == [])
        await asyncio.sleep(2.2)  # the expiry itself is the condition: wait past it (1 s)
        box = await Box(broker, topics=[("sb/sb-0001/notify", 1)], clean=False).start()
        await until(lambda: box.messages)
        assert box.connects == [True] and box.messages == [("sb/sb-0001/notify", b"fresh")]
        await box.stop()
        await cloud.stop()

    asyncio.run(main())


def test_session_expiry_is_what_we_ask_for(broker):
    async def main():
        for expiry, present in ((3600, True), (1, False)):
            client_id = "sb-exp-%d" % expiry
            box = await Box(broker, client_id, clean=False, session_expiry_s=expiry).start()
            await box.stop()
            await asyncio.sleep(2.2)  # past the short expiry (1 s): the broker's clock decides
            box = await Box(broker, client_id, clean=False, session_expiry_s=expiry).start()
            assert box.connects == [present], (expiry, box.connects)
            await box.stop()

    asyncio.run(main())


def test_receive_maximum_both_ways(broker):
    async def main():
        box = await Box(broker, topics=[("sb/sb-0001/notify", 1)], receive_maximum=3, max_inflight=10).start()
        await subscribed(box, "sb/sb-0001/notify")
        server_max = box.session.server.get(c.RECEIVE_MAXIMUM, 65535)
        assert box.session._window == min(10, server_max), (box.session.server, box.session._window)
        cloud = await Box(broker, "cloud-5", max_inflight=10).start()
        for i in range(12):  # more than the box takes unacknowledged: the broker paces them
            await cloud.client.publish("sb/sb-0001/notify", b"%d" % i, 1)
        await until(lambda: len(box.messages) == 13)
        assert [p for _, p in box.messages[1:]] == [b"%d" % i for i in range(12)]
        await box.stop()
        await cloud.stop()

    asyncio.run(main())


MP_BOX = """
import asyncio, sys
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session
from soundbox import mqttcodec as c

host, port = sys.argv[1], int(sys.argv[2])
got = []

async def on_message(msg):
    got.append(msg.topic)
    print("got", msg.topic, len(msg.payload), msg.props.get(c.MESSAGE_EXPIRY, "-"))

async def on_connect(client, present):
    await client.subscribe([("sb/sb-0001/#", 1)])
    await client.publish("sb/sb-0001/m", b"marker", 1, expiry_s=60)

async def main():
    client = Client(Session("sb-0001", protocol=5, max_packet=65536), host, port, on_message, on_connect,
                    log=print, on_notice=lambda ev: print("notice", repr(ev)))
    task = asyncio.create_task(client.run())
    while "sb/sb-0001/next" not in got:
        await asyncio.sleep_ms(20)
    print("server receive maximum", client.session.server.get(c.RECEIVE_MAXIMUM))
    await client.stop()
    task.cancel()
    print("done")

asyncio.run(main())
"""


def test_mqtt5_on_the_micropython_unix_port_against_mosquitto(broker, micropython, tmp_path):
    import os
    import subprocess

    from soundbox_tools.mpdevice import code_dirs

    script = tmp_path / "mp_box.py"
    script.write_text(MP_BOX)
    env = dict(os.environ, MICROPYPATH=code_dirs()[0] + ":.frozen")
    proc = subprocess.Popen([micropython, str(script), broker.host, str(broker.port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []

    async def main():
        cloud = await Box(broker, "cloud-5").start()
        loop = asyncio.get_running_loop()
        while not any(line.startswith("got sb/sb-0001/m ") for line in lines):  # subscribed
            line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), 20)
            assert line, "micropython ended early: %r" % lines
            lines.append(line.strip())
        await cloud.client.publish("sb/sb-0001/ota/job", b"J" * 100 * 1024, 1)
        await cloud.client.publish("sb/sb-0001/next", b"n", 1, expiry_s=600)
        await until(lambda: cloud.session.inflight == [])
        await cloud.stop()

    try:
        asyncio.run(main())
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines += out.splitlines()
    assert "done" in lines and proc.returncode == 0, lines
    assert [line for line in lines if line.startswith("got")][:1] == ["got sb/sb-0001/m 6 60"], lines
    nxt = [line for line in lines if line.startswith("got sb/sb-0001/next 1 ")]
    assert nxt and 0 < int(nxt[0].split()[-1]) <= 600, lines  # the expiry left, as the broker counts it
    assert not [line for line in lines if "ota/job" in line or line.startswith("notice")], lines
