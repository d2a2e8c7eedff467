"""Run the cloud (MQTT link + HTTP API) until SIGTERM or SIGINT."""
import signal
import threading

from soundbox_cloud.chunkserver import DEFAULT_BURST, DEFAULT_RATE
from soundbox_cloud.cloud import ACK_DEADLINE_S, NOTIFY_EXPIRY_S, Cloud
from soundbox_cloud.http_server import ApiServer, listen
from soundbox_cloud.logsetup import log_to_stderr


def serve(broker_url, http_host, http_port, db_path, group="cloud", ready=None, certs="certs",
          instance="0", ota_dir=None, chunk_rate=DEFAULT_RATE, chunk_burst=DEFAULT_BURST,
          ack_deadline_s=ACK_DEADLINE_S, private_webhooks=False, notify_expiry_s=NOTIFY_EXPIRY_S,
          log_level="info"):
    """Serve until SIGTERM/SIGINT, then stop taking requests, disconnect and close the database.

    ota_dir: signed OTA artifacts (<name>.bin + <name>.manifest.json); default <db dir>/ota.
    chunk_rate, chunk_burst: each device's OTA chunk limit in bytes (chunk_rate None: no limit).
    ack_deadline_s: a payment no device acknowledged this long is marked timed_out.
    private_webhooks: let tenants' webhooks point at loopback / private addresses (a lab).
    notify_expiry_s: how long the broker keeps a notification for an offline box.
    ready: optional callable, called with the API URL once everything is up (handy with port 0).
    log_level: the cloud's log lines at this level and above go to stderr (log_to_stderr);
    None leaves logging as the caller set it up.
    Runs in the main thread (it installs signal handlers). Raises CloudError (one-line message)
    when the broker is unreachable, the port is taken or the database cannot be opened.
    """
    unlog = log_to_stderr(log_level) if log_level is not None else (lambda: None)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    sock = None
    try:
        sock = listen(http_host, http_port)   # first: see ApiServer
        with Cloud(broker_url, db_path, group, certs, instance, ota_dir=ota_dir, chunk_rate=chunk_rate,
                   chunk_burst=chunk_burst, ack_deadline_s=ack_deadline_s,
                   private_webhooks=private_webhooks, notify_expiry_s=notify_expiry_s) as cloud:
            server = ApiServer(cloud, sock).start()
            try:
                print("cloud handler listening on %s (broker %s; %s)" % (server.url, broker_url,
                                                                         cloud.chunks.limit_text), flush=True)
                if ready is not None:
                    ready(server.url)
                while not stop.wait(1.0):
                    pass
            finally:
                # HTTP first, so no payment is accepted once the MQTT side is going away.
                server.close()
    finally:
        if sock is not None:
            sock.close()   # again after server.close(): harmless; the only close when Cloud failed
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        unlog()
