"""The ledger's ring in a real file (soundbox.blockdev.FileBlocks through FileStorage), as the
simulator, the unix port and a board without a ledger partition keep it: NOR behaviour on
disk, the file grows only as blocks are used, no file descriptor stays open, and a box
upgraded from ledger.txt keeps its txns."""

import os

from soundbox import wire
from soundbox.blockdev import FileBlocks
from soundbox.ledger import FILE, Ledger
from soundbox.storage import FileStorage


def test_a_file_programs_like_nor_flash_and_grows_only_as_blocks_are_used(tmp_path):
    dev = FileBlocks(str(tmp_path / "ring"), count=4)
    buf = bytearray(4)
    dev.readblocks(3, buf)
    assert buf == b"\xff" * 4 and not (tmp_path / "ring").exists()  # nothing written: erased
    dev.writeblocks(1, b"\xf0\x0f", 8)
    assert (tmp_path / "ring").stat().st_size == 4096 + 10  # the gap before it: erased bytes
    dev.writeblocks(1, b"\x3c\xff", 8)  # over programmed bytes: ANDed in
    dev.readblocks(1, buf, 7)
    assert buf == b"\xff\x30\x0f\xff"
    dev.ioctl(6, 3)  # past the end: erased already, nothing to write
    assert (tmp_path / "ring").stat().st_size == 4096 + 10
    dev.ioctl(6, 1)
    dev.readblocks(1, buf, 7)
    assert buf == b"\xff" * 4 and dev.ioctl(4, 0) == 4 and dev.ioctl(5, 0) == 4096


def test_the_ledger_ring_on_disk_survives_restarts_and_holds_no_open_file(tmp_path):
    store = FileStorage(str(tmp_path))
    led = Ledger(store)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(40):
        led.add("T%d" % i, wire.STALE if i == 7 else wire.ANNOUNCED)
        led.tidy()
    assert len(os.listdir("/proc/self/fd")) == before
    assert (tmp_path / "ledger.ring").stat().st_size <= 2 * 4096  # 40 records: two blocks used
    again = Ledger(store)
    assert again.order == ["T%d" % i for i in range(40)] and again.outcome("T7") == wire.STALE


def test_a_box_upgraded_from_ledger_txt_keeps_its_txns_and_the_file_goes(tmp_path):
    store = FileStorage(str(tmp_path))
    lines = b"".join(b"OLD%d\n" % i for i in range(300)) + b"OLD5 f\nOLD299 s\nOLD3"  # cut short
    (tmp_path / FILE).write_bytes(lines)
    led = Ledger(store)
    assert not (tmp_path / FILE).exists()
    # The newest 256 by their last line: OLD5's and OLD299's marks moved them to the end.
    assert len(led) == 256 and led.order[0] == "OLD45" and led.order[-2:] == ["OLD5", "OLD299"]
    assert led.outcome("OLD299") == wire.STALE and led.outcome("OLD5") == wire.FAILED and "OLD44" not in led
    led.add("NEW")
    again = Ledger(store)
    assert again.order == led.order and again.outcome("OLD299") == wire.STALE and "NEW" in again
