"""Serve the HTTP app with uvicorn on a socket we bind ourselves (a clear error when the
port is taken, the real port when asked for port 0, a listen backlog for bursts)."""
import socket
import threading

import uvicorn

from soundbox_cloud.errors import CloudError
from soundbox_cloud.http_app import create_app

# The standard library's server listened with a backlog of 5: 121 of 200 concurrent POSTs
# were reset. The kernel caps this at net.core.somaxconn.
BACKLOG = 4096
IDLE_TIMEOUT_S = 30         # an idle keep-alive connection is closed after this long
STARTUP_TIMEOUT_S = 10.0


def listen(host, port, backlog=BACKLOG):
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets that say they are TCP,
    # and with Nagle on every answer's body waited for the client's delayed ACK (44 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise CloudError("cannot listen on http://%s:%d: %s" % (host, port, e.strerror or e)) from None
    return sock


class ApiServer:
    """The cloud's HTTP API on its own thread: start(), .url, close(). sock: from listen(),
    bound before the cloud connects to the broker, so none of the cloud's own outgoing
    connections can take the port first (the kernel may hand a just-freed port, such as one
    a caller picked as free, to a connect() as its source port)."""

    def __init__(self, cloud, sock):
        self.sock = sock
        self.host, self.port = self.sock.getsockname()[:2]
        # httptools and uvloop: the C parser and loop, about a tenth more payments a second.
        config = uvicorn.Config(create_app(cloud), http="httptools", loop="uvloop", lifespan="off",
                                access_log=False, log_level="warning", server_header=False,
                                timeout_keep_alive=IDLE_TIMEOUT_S, backlog=BACKLOG)
        self.server = uvicorn.Server(config)
        self._thread = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        # uvicorn installs no signal handlers off the main thread: our caller owns them.
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="cloud-http", daemon=True)
        self._thread.start()
        for _ in range(int(STARTUP_TIMEOUT_S / 0.01)):
            if self.server.started:
                return self
            if not self._thread.is_alive():
                break
            self._thread.join(0.01)
        raise CloudError("the HTTP server on %s did not start" % self.url)

    def close(self):
        """Stop taking requests, finish the ones in flight, close the socket."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(IDLE_TIMEOUT_S)
        self.sock.close()
