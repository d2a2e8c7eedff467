"""A Hindi soundbox end to end: `soundbox sim --lang hi --voice DIR` builds DIR/hi.pack and the
real firmware announces a payment from the cloud in Hindi, streamed from the pack into a WAV."""

import os
import wave

from soundbox.voice import announcement_tokens
from soundbox.voicepack import Pack
from test_end_to_end import Stack, journal


def test_a_hindi_box_announces_in_hindi_from_its_pack(broker, tmp_path, pki):
    voice_dir = tmp_path / "voice"  # empty: the simulator builds hi.pack there first
    stack = Stack(broker, tmp_path, str(voice_dir), devices=1, pki=pki, sim_args=["--lang", "hi"])
    try:
        status, body = stack.post("/payments", {"device": "sb-0001", "amount": 25000, "txn": "HI-1"})
        assert status == 202, body
        (ack,) = stack.acks("HI-1", 1)
        assert ack["status"] == "announced", ack
        (played,) = [j for j in journal(stack.journal) if j["txn"] == "HI-1"]
        assert played["words"] == "दो सौ पचास रुपये प्राप्त हुए"
        (wav,) = os.listdir(tmp_path / "out" / "sb-0001")
        with Pack(str(voice_dir / "hi.pack")) as pack:
            expected = pack.duration_ms(announcement_tokens(25000, "hi"))
            with wave.open(str(tmp_path / "out" / "sb-0001" / wav), "rb") as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (pack.rate, 1, 2)
                assert abs(w.getnframes() * 1000 // pack.rate - expected) <= 1
        assert ack["done"] - ack["play"] >= expected - 50  # the box took as long as the audio
    finally:
        stack.close()
