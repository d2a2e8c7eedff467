// MicroPython for the soundbox's esp32-s3 reference board (see mpconfigboard.cmake).
#define MICROPY_HW_BOARD_NAME "Soundbox ESP32-S3 (ROMFS, OTA)"
#define MICROPY_HW_MCU_NAME "ESP32-S3"

// The DevKitC-1's UART port (USB-serial chip) carries the REPL, as on ESP32_GENERIC_S3.
#define MICROPY_HW_ENABLE_UART_REPL (1)

// ROMFS: the "romfs" data partition is mounted at /rom at start-up and /rom/lib is put on
// sys.path; .mpy files there run in place from flash instead of being loaded into the heap.
#define MICROPY_VFS_ROM (1)
