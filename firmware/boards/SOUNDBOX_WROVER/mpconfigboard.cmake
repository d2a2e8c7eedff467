# MicroPython for the soundbox's esp32-wrover reference board (firmware/boards/esp32-wrover.json):
# ESP32_GENERIC with PSRAM, plus ROMFS (/rom, the app's code run in place from flash) and
# two OTA app slots. Not an upstream board: copy this directory to
# micropython/ports/esp32/boards/ and run `make BOARD=SOUNDBOX_WROVER` (docs/esp32.md).
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.ble
    boards/sdkconfig.spiram
    boards/SOUNDBOX_WROVER/sdkconfig.board
)
