# lade_add_test(NAME SOURCES a.c b.c LIBS x y [LABELS unit|vulkan|e2e] [TIMEOUT s])
#
# Registers one cmocka program with ctest. Every test runs with the Vulkan
# validation layer forced on (LADE_VALIDATION=1): vk/ then turns any
# validation message into a failure of the test that caused it.
# Label "unit" marks tests that need no Vulkan device; the sanitizer build in
# CI runs those (lavapipe itself is not built with ASan).
function(lade_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    LADE_SHARED_DIR="${LADE_SHARED_DIR}"
    LADE_MODELS_DIR="${LADE_MODELS_DIR}"
    LADE_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    LADE_BINARY_DIR="${CMAKE_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    LABELS "${T_LABELS}"
    ENVIRONMENT "LADE_VALIDATION=1;CMOCKA_MESSAGE_OUTPUT=stdout;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()
