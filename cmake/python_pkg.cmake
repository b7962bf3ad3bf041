# The Python package (python/kquant, pyproject.toml; issue 16), included from
# cmake/tests.cmake after the Python interpreter is looked up there:
#   py_pkg_unit     pytest over python/tests against this build's libkquant
#                   (KQ_LIB): every layer kind and type against gguf-py,
#                   zero-copy, lifetimes, threads, errors, torch if present;
#   py_pkg_install  `pip install .` into a fresh venv under this build folder
#                   (CPU-only: CMAKE_ARGS=-DKQ_CUDA=OFF, as CI has nvcc but no
#                   GPU), then the README example from an empty folder.
# Both exit 77, saying why, where pytest, venv/pip or PyPI are missing.
set(KQ_PY_PKG_DIR ${CMAKE_CURRENT_SOURCE_DIR}/python)
foreach(name py_pkg_unit py_pkg_install)
  if(name STREQUAL "py_pkg_unit")
    set(script ${KQ_PY_PKG_DIR}/tests/run_pytest.py)
  else()
    set(script ${KQ_PY_PKG_DIR}/tests/install_check.py)
  endif()
  if(Python3_Interpreter_FOUND)
    add_test(NAME ${name} COMMAND ${Python3_EXECUTABLE} ${script})
  else()
    add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E echo
      "SKIP: python3 not found when configuring; ${name} needs it")
    set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
  endif()
endforeach()
set_tests_properties(py_pkg_unit PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900
  ENVIRONMENT "KQ_LIB=$<TARGET_FILE:kquant_shared>;KQ_TEST_TMP=${CMAKE_CURRENT_BINARY_DIR}/test-tmp;PYTHONDONTWRITEBYTECODE=1;${KQ_PY_ENV}")
# The wheel build compiles the library again (about a minute on 2 cores).
set_tests_properties(py_pkg_install PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1800
  ENVIRONMENT "KQ_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR};KQ_INSTALL_DIR=${CMAKE_CURRENT_BINARY_DIR}/python-install;PYTHONDONTWRITEBYTECODE=1")
