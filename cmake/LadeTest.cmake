# lade_add_test(NAME SOURCES a.c b.c LIBS x y [LABELS unit|vulkan|e2e] [TIMEOUT s])
#
# Registers one cmocka program with ctest. Every test runs with the Vulkan
# validation layer forced on (LADE_VALIDATION=1): vk/ then turns any
# validation message into a failure of the test that caused it.
# Label "unit" marks tests that need no Vulkan device; the sanitizer build in
# CI runs those, the e2e ones and a few Vulkan ones (lavapipe itself is not
# built with ASan, but our side of every call is). Vulkan tests run there
# without LeakSanitizer: the loader unloads lavapipe and the validation
# layer before the leak check, which then finds a 128-byte realloc of theirs
# with no module to name or suppress it by. Leaks of our own code are the
# unit and e2e tests' to find.
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
  set(leaks 1)
  if("vulkan" IN_LIST T_LABELS)
    set(leaks 0)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    LABELS "${T_LABELS}"
    ENVIRONMENT "LADE_VALIDATION=1;CMOCKA_MESSAGE_OUTPUT=stdout;ASAN_OPTIONS=detect_leaks=${leaks}:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()
