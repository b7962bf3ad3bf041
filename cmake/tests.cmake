# Every tests/test_*.c is a ctest of its own; every tests/python/test_*.py
# too; tests/cli/*.sh and the install test likewise. Exit status 77 means
# "skipped", and the test prints why.
file(GLOB KQ_C_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/test_*.c)
add_library(kq_testutil STATIC tests/testutil.c)
target_include_directories(kq_testutil PUBLIC include src tests)
target_compile_options(kq_testutil PRIVATE -Wall -Wextra)
target_compile_definitions(kq_testutil PRIVATE _GNU_SOURCE)
foreach(src ${KQ_C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -Wall -Wextra -ffp-contract=off)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_link_libraries(${name} PRIVATE kq_testutil kquant_static)
  if(KQ_HAVE_CUDA)
    target_compile_definitions(${name} PRIVATE KQ_HAVE_CUDA=1)
  endif()
  # Tests over every weight type run as one ctest per type (and "fused"),
  # so a failure names its type and the slices run in parallel.
  if(name STREQUAL "test_linear" OR name STREQUAL "test_experts")
    set(slices f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 iq4_nl mxfp4 q2_K q3_K q4_K q5_K q6_K
      iq4_xs)
    if(name STREQUAL "test_linear")
      list(APPEND slices fused)
    endif()
  elseif(name STREQUAL "test_cpu_backend")
    # One ctest per instruction set (those the CPU lacks exit 77, saying so).
    set(slices scalar avx2 avx512 neon misc)
  else()
    set(slices "")
  endif()
  if(slices)
    foreach(slice ${slices})
      add_test(NAME ${name}.${slice} COMMAND ${name} ${slice})
      set_tests_properties(${name}.${slice} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
        ENVIRONMENT "KQ_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/test-tmp")
    endforeach()
  else()
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
      ENVIRONMENT "KQ_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/test-tmp")
  endif()
endforeach()
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/test-tmp)
# The tokenizer on the command line, for tests/python/test_tokenizer_oracle.py.
add_executable(tok_cli tests/tok_cli.c)
target_compile_definitions(tok_cli PRIVATE _GNU_SOURCE)
target_link_libraries(tok_cli PRIVATE kq_testutil kquant_static)

find_package(Python3 COMPONENTS Interpreter)
# Extra environment for the Python tests, as VAR=value;VAR=value: the
# sanitizer build (Makefile, test-sanitize) preloads libasan here so python3
# can load the sanitized libkquant.so.
set(KQ_PY_ENV "" CACHE STRING "Extra environment for the Python tests")
file(GLOB KQ_PY_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/python/test_*.py)
foreach(src ${KQ_PY_TESTS})
  get_filename_component(name ${src} NAME_WE)
  if(Python3_Interpreter_FOUND)
    add_test(NAME py_${name} COMMAND ${Python3_EXECUTABLE} ${src})
  else()
    add_test(NAME py_${name} COMMAND ${CMAKE_COMMAND} -E echo
      "SKIP: python3 not found when configuring; ${name} needs it")
    set_tests_properties(py_${name} PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
  endif()
  set_tests_properties(py_${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
    ENVIRONMENT "KQ_LIB=$<TARGET_FILE:kquant_shared>;KQ_BIN=$<TARGET_FILE:kq>;KQ_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/test-tmp;PYTHONDONTWRITEBYTECODE=1;${KQ_PY_ENV}")
endforeach()

file(GLOB KQ_SH_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/cli/test_*.sh)
foreach(src ${KQ_SH_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME cli_${name} COMMAND bash ${src})
  set_tests_properties(cli_${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "KQ_BIN=$<TARGET_FILE:kq>;KQ_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/test-tmp;KQ_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR};KQ_BUILD_DIR=${CMAKE_CURRENT_BINARY_DIR}")
endforeach()

# Fuzz harnesses (fuzz/README.md). In every build each harness also links
# with a small driver that replays its seed corpus, past findings included,
# as an ordinary test (so the sanitizer build replays it too). With
# KQ_FUZZ=ON (clang, and -fsanitize=fuzzer-no-link,... in CMAKE_C_FLAGS so
# the library is instrumented) they are also built as libFuzzer binaries.
option(KQ_FUZZ "Build the libFuzzer harnesses (needs clang and its fuzzer runtime)" OFF)
foreach(h gguf load)
  add_executable(fuzz_${h}_replay fuzz/replay.c fuzz/fuzz_${h}.c fuzz/fuzz_input.c)
  target_compile_options(fuzz_${h}_replay PRIVATE -Wall -Wextra)
  target_compile_definitions(fuzz_${h}_replay PRIVATE _GNU_SOURCE)
  target_link_libraries(fuzz_${h}_replay PRIVATE kquant_static)
  add_test(NAME fuzz_${h}_corpus COMMAND fuzz_${h}_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${h})
  set_tests_properties(fuzz_${h}_corpus PROPERTIES TIMEOUT 300
    ENVIRONMENT "TMPDIR=${CMAKE_CURRENT_BINARY_DIR}/test-tmp")
  if(KQ_FUZZ)
    add_executable(fuzz_${h} fuzz/fuzz_${h}.c fuzz/fuzz_input.c)
    target_compile_options(fuzz_${h} PRIVATE -Wall -Wextra -fsanitize=fuzzer)
    target_compile_definitions(fuzz_${h} PRIVATE _GNU_SOURCE)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_${h} PRIVATE kquant_static)
  endif()
endforeach()
if(KQ_FUZZ)
  add_executable(kq_make_corpus fuzz/make_corpus.c)
  target_compile_options(kq_make_corpus PRIVATE -Wall -Wextra)
  target_link_libraries(kq_make_corpus PRIVATE kquant_static)
endif()

# The Python package: pytest suite and pip install (cmake/python_pkg.cmake).
include(${CMAKE_CURRENT_SOURCE_DIR}/cmake/python_pkg.cmake)
