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
