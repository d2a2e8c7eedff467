# MicroPython for the soundbox's esp32-s3 reference board (firmware/boards/esp32-s3.json):
# ESP32_GENERIC_S3 (quad PSRAM, N8R2), plus ROMFS (/rom, the app's code run in place from
# flash) and two OTA app slots. Not an upstream board: copy this directory to
# micropython/ports/esp32/boards/ and run `make BOARD=SOUNDBOX_S3` (docs/esp32.md).
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    boards/SOUNDBOX_S3/sdkconfig.board
)
