# Cross-compiling for 64-bit ARM Linux with Debian's cross toolchain
# (packages gcc-aarch64-linux-gnu and libc6-dev-arm64-cross). The programs
# run on an x86-64 host under qemu-aarch64 -L /usr/aarch64-linux-gnu, as
# `make test-neon` does.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

# Debian's cross gcc unless the command line names another compiler (clang
# with -DCMAKE_C_COMPILER_TARGET=aarch64-linux-gnu builds against the same
# sysroot).
if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
endif()

# Headers and libraries come from the target's sysroot only; programs
# (cmake, python3) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs the test programs through qemu (QEMU_CPU in the environment
# picks the CPU model).
set(KQ_QEMU qemu-aarch64 CACHE STRING "The qemu user-mode emulator for ARM64")
set(CMAKE_CROSSCOMPILING_EMULATOR ${KQ_QEMU} -L /usr/aarch64-linux-gnu)
