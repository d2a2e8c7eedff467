// MicroPython for the soundbox's esp32-wrover reference board (see mpconfigboard.cmake).
#define MICROPY_HW_BOARD_NAME "Soundbox ESP32-WROVER (ROMFS, OTA)"
#define MICROPY_HW_MCU_NAME "ESP32"

// ROMFS: the "romfs" data partition is mounted at /rom at start-up and /rom/lib is put on
// sys.path; .mpy files there run in place from flash instead of being loaded into the heap.
#define MICROPY_VFS_ROM (1)
