"""One real Soundbox app on SimHal, on an event loop in a background thread of the test."""
import asyncio
import threading

from soundbox_fw.app import Soundbox
from soundbox_sim.hal import HostClock, SimHal
from test_end_to_end import eventually


class SwitchableClock(HostClock):
    """The host's clock, but the test says whether the box may trust it (NTP not synced yet)."""

    def __init__(self, trusted=True):
        self.is_trusted = trusted

    def trusted(self):
        return self.is_trusted


class AppOnThread:
    """The app connected to `broker` as `device` with the identity in `identity_dir`,
    playing into `sink`. reboot: the HAL's restart hook (None: SimHal's own, which refuses
    outside a Fleet); trusted: whether its clock starts trusted (`self.clock.is_trusted`
    switches it); config: more keys of the app's config (e.g. mqtt=5)."""

    def __init__(self, broker, state_dir, identity_dir, sink, device="sb-0001", reboot=None, trusted=True,
                 **config):
        self.device = device
        self.sink = sink
        self.logs = []
        self.loop = asyncio.new_event_loop()
        self.hal = SimHal(str(state_dir), self.sink, self.logs.append, reboot=reboot)
        self.hal.clock = self.clock = SwitchableClock(trusted)
        config = dict({"device_id": device, "broker_host": broker.host, "broker_port": broker.port,
                       "keepalive": 5, "identity": str(identity_dir)}, **config)
        started = threading.Event()

        def main():
            asyncio.set_event_loop(self.loop)
            self.app = Soundbox(self.hal, config)
            self.task = self.loop.create_task(self.app.run())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert started.wait(5)
        assert eventually(lambda: self.app.mqtt.connected, 10), self.logs

    def stop(self):
        async def stop_and_wait():
            await self.app.stop()
            await self.task

        asyncio.run_coroutine_threadsafe(stop_and_wait(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
