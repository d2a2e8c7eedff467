"""Host tooling: the `soundbox` CLI, broker runner, demo and (later) PKI/OTA/device tools."""
