# Finds the C++ Actor Framework 0.17 (Debian's libcaf-dev ships no CMake config or .pc).
# Defines CAF::core, CAF::io (links core) and CAF::openssl (links io + OpenSSL).
# -DCAF_ROOT=<prefix> picks a CAF installed elsewhere (scripts/sanitize.sh thread builds one
# with -fsanitize=thread). Only that prefix is searched then: headers from one CAF and
# libraries from another would mismatch silently.
if(CAF_ROOT)
  set(_caf_hint PATHS "${CAF_ROOT}" NO_DEFAULT_PATH)
endif()
find_path(CAF_INCLUDE_DIR caf/config.hpp PATH_SUFFIXES include ${_caf_hint})
find_library(CAF_CORE_LIBRARY caf_core PATH_SUFFIXES lib lib64 ${_caf_hint})
find_library(CAF_IO_LIBRARY caf_io PATH_SUFFIXES lib lib64 ${_caf_hint})
find_library(CAF_OPENSSL_LIBRARY caf_openssl PATH_SUFFIXES lib lib64 ${_caf_hint})

if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_ver REGEX "^#define CAF_VERSION [0-9]+")
  string(REGEX REPLACE ".*CAF_VERSION ([0-9]+).*" "\\1" _caf_num "${_caf_ver}")
  math(EXPR _caf_major "${_caf_num} / 10000")
  math(EXPR _caf_minor "(${_caf_num} / 100) % 100")
  math(EXPR _caf_patch "${_caf_num} % 100")
  set(CAF_VERSION "${_caf_major}.${_caf_minor}.${_caf_patch}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY
  VERSION_VAR CAF_VERSION)

if(CAF_FOUND AND NOT TARGET CAF::core)
  find_package(Threads REQUIRED)
  add_library(CAF::core UNKNOWN IMPORTED)
  set_target_properties(CAF::core PROPERTIES
    IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(CAF::io UNKNOWN IMPORTED)
  set_target_properties(CAF::io PROPERTIES
    IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
    INTERFACE_LINK_LIBRARIES CAF::core)
  if(CAF_OPENSSL_LIBRARY)
    find_package(OpenSSL REQUIRED)
    add_library(CAF::openssl UNKNOWN IMPORTED)
    set_target_properties(CAF::openssl PROPERTIES
      IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
      INTERFACE_LINK_LIBRARIES "CAF::io;OpenSSL::SSL;OpenSSL::Crypto")
  endif()
endif()
mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY CAF_OPENSSL_LIBRARY)
