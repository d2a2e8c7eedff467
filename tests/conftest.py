import pytest

from soundbox_tools.broker import Mosquitto


@pytest.fixture
def broker(tmp_path):
    """A private mosquitto on a free loopback port with the project's generated config."""
    with Mosquitto(tmp_path / "broker") as b:
        yield b
