"""A box flooding QoS 0 telemetry as fast as its socket takes it, until SIGTERM; then it
prints how many messages it wrote. A process of its own (it must not share the GIL with
the cloud under test) speaking raw MQTT over mutual TLS, in batches of 1,000 packets:
far faster than a real box's uplink or a paho client.

    python flooder.py HOST PORT CA CERT KEY DEVICE_ID
"""
import signal
import socket
import ssl
import sys

from soundbox.mqttcodec import CONNECT, PUBLISH, Packet, encode

BATCH = 1000


def main(host, port, ca, cert, key, device):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    sock = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    sock.sendall(encode(Packet(CONNECT, client_id=device, keepalive=0, clean=True)))
    if sock.recv(4)[:1] != b"\x20":
        sys.exit("no CONNACK")
    payload = b'{"fw": "0.1.0", "rssi": -60, "pad": "%s"}' % (b"x" * 100)
    batch = encode(Packet(PUBLISH, topic="sb/%s/telemetry" % device, payload=payload)) * BATCH
    sent = 0
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        while True:
            sock.sendall(batch)
            sent += BATCH
    finally:
        print(sent, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
