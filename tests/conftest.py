import pytest

from soundbox_tools.broker import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A private mosquitto on a free loopback port with the project's generated config."""
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture(scope="session")
def voice_pack(tmp_path_factory):
    """The real en-IN voice pack rendered by espeak-ng, once per test session."""
    from soundbox_tools.voicepack import build_pack

    path = tmp_path_factory.mktemp("voice") / "en-IN"
    build_pack("en-IN", str(path))
    return str(path)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A development PKI (CA, broker, cloud) with devices sb-0001..sb-0004, once per session.
    Tests that revoke, rotate or expire an identity issue their own device ids."""
    from soundbox_tools.pki import Pki

    p = Pki(tmp_path_factory.mktemp("pki") / "certs").init()
    p.issue_devices(["sb-%04d" % n for n in range(1, 5)])
    return p


@pytest.fixture
def tls_broker(tmp_path, pki):
    """A private mosquitto with the mutual-TLS listener and ACL generated from `pki`."""
    with Mosquitto(tmp_path / "tls-broker", pki=pki) as b:
        yield b


@pytest.fixture(scope="session")
def micropython():
    """The real MicroPython unix port. Missing or too old is a failure that says how to
    install it, never a skip: the device's network path is proven only there."""
    from soundbox_tools.mpdevice import MicroPythonError, micropython_binary

    try:
        return micropython_binary()
    except MicroPythonError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL (tests/pgserver.py) on a free loopback port, once per session,
    started only when a test asks for it. Missing binaries are a failure that says how to
    install them, never a skip."""
    from pgserver import PgServer, PgUnavailable

    try:
        server = PgServer().__enter__()   # stops and cleans up itself if it cannot start
    except PgUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """The cloud's database for one test, on each engine: a SQLite path in tmp_path, or the
    URL of a fresh database (CREATE DATABASE) on the session's private PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "cloud.db")
    return request.getfixturevalue("pg_server").new_database()
