"""Soundbox firmware: the application and the ESP32 board support."""
