#!/usr/bin/env bash
# cmake --install into a temporary prefix, then build a consumer against it
# with find_package(kquant) (shared and static) and with pkg-config.
set -euo pipefail
prefix=$(mktemp -d "${KQ_TEST_TMP:-/tmp}/install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$KQ_BUILD_DIR" --prefix "$prefix/usr" >/dev/null
test -f "$prefix/usr/include/kquant.h"
libdir=$(dirname "$(find "$prefix/usr" -name 'libkquant.so' | head -n 1)")
test -f "$libdir/libkquant.a"
test -f "$libdir/pkgconfig/kquant.pc"
test -f "$libdir/cmake/kquant/kquantConfig.cmake"
test -x "$prefix/usr/bin/kq"

cmake -S "$KQ_SOURCE_DIR/tests/install" -B "$prefix/consumer" \
  -DCMAKE_PREFIX_PATH="$prefix/usr" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$prefix/consumer/consumer_shared"
"$prefix/consumer/consumer_static"

if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH="$libdir/pkgconfig"
  cc -o "$prefix/consumer_pc" "$KQ_SOURCE_DIR/tests/install/consumer.c" \
    $(pkg-config --cflags kquant) $(pkg-config --libs kquant)
  LD_LIBRARY_PATH="$libdir" "$prefix/consumer_pc"
  test "$(pkg-config --modversion kquant)" = "$("$prefix/usr/bin/kq" version | cut -d' ' -f2)"
else
  echo "SKIP: pkg-config is not installed; the CMake package was checked, the .pc file was not"
  exit 77
fi
echo "install test: find_package (shared, static) and pkg-config consumers ran"
