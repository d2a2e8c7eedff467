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
