"""What the VM tests of a device bundle generate for a module that is native code."""

# Native (viper) code compiled for the board's CPU: this VM is not one, so it must refuse the
# module, and soundbox.adpcm must then fall back to its plain decoder.
NATIVE_TEST = (
    "def test_import_%s():\n"
    "    try:\n"
    "        __import__(%r)\n"
    "    except ValueError:\n"
    "        import soundbox.adpcm\n"
    "        assert not soundbox.adpcm.NATIVE\n"
    "        return\n"
    "    raise AssertionError('xtensawin code imported on another CPU')\n")
