"""Reference cloud handler: takes payments over HTTP, notifies soundboxes over MQTT, records their acks."""
