# One CMake target per layer folder, and the build enforces the arrows between them.
#
# Internal headers are included by their path from the repository root
# ("runtime/l1/...", "bus/envelope.hpp"), but the root itself is on no include path. Each
# layer gets a directory of its own under the build tree (layers/<target>/) that holds
# links to the headers of its folder only, at their repository paths. A target sees its
# own link directory and, through `target_link_libraries(... PUBLIC ...)`, those of the
# layers it depends on (transitively), nothing else: an include that points up a layer,
# or sideways to a layer not declared as a dependency, does not compile.
#
# Headers are linked one by one, not the folder, so a folder's sub-folders (which are
# layers of their own, e.g. runtime/storage/sqlite under runtime/storage) stay hidden.
#
#   warp_layer(<target> [FOLDERS <dir>...] [DEPS <layer targets>...]
#              [PUBLIC_LIBS <libs>...] [PRIVATE_LIBS <libs>...] [EXCLUDE <regex>...]
#              [PUBLIC_INCLUDE <dir>] [CAF_PCH])
#
# FOLDERS defaults to the calling directory; DEPS are other warp_layer targets (checked
# for cycles by warp_check_layers()); PUBLIC_INCLUDE is a directory of installed headers
# (<warp/...>) that dependents see as they are.
include_guard(GLOBAL)

function(warp_layer name)
  cmake_parse_arguments(L "CAF_PCH" "PUBLIC_INCLUDE" "FOLDERS;DEPS;PUBLIC_LIBS;PRIVATE_LIBS;EXCLUDE"
                        ${ARGN})
  if(NOT L_FOLDERS)
    set(L_FOLDERS ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  set(root ${PROJECT_BINARY_DIR}/layers/${name})
  set(sources "")
  set(rel_folders "")
  foreach(dir ${L_FOLDERS})
    get_filename_component(dir ${dir} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
    list(APPEND rel_folders ${rel})
    file(GLOB dir_sources CONFIGURE_DEPENDS ${dir}/*.cpp)
    list(APPEND sources ${dir_sources})
    file(GLOB headers CONFIGURE_DEPENDS ${dir}/*.hpp)
    file(MAKE_DIRECTORY ${root}/${rel})
    foreach(header ${headers})
      get_filename_component(header_name ${header} NAME)
      if(NOT EXISTS ${root}/${rel}/${header_name})
        file(CREATE_LINK ${header} ${root}/${rel}/${header_name} SYMBOLIC)
      endif()
    endforeach()
  endforeach()
  foreach(regex ${L_EXCLUDE})
    list(FILTER sources EXCLUDE REGEX "${regex}")
  endforeach()
  if(sources)
    add_library(${name} STATIC ${sources})
    set(scope PUBLIC)
  else()
    add_library(${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  # warp_core -> warp::core, warp -> warp::warp: the names an embedder links against.
  string(REGEX REPLACE "^warp_" "" export_name ${name})
  add_library(warp::${export_name} ALIAS ${name})
  set_target_properties(${name} PROPERTIES EXPORT_NAME ${export_name})
  target_include_directories(${name} ${scope} $<BUILD_INTERFACE:${root}>)
  if(L_PUBLIC_INCLUDE)
    get_filename_component(inc ${L_PUBLIC_INCLUDE} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    target_include_directories(${name} ${scope} $<BUILD_INTERFACE:${inc}>
                                                $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    set_property(GLOBAL APPEND PROPERTY WARP_PUBLIC_HEADER_DIRS ${inc}/warp)
    file(RELATIVE_PATH rel_inc ${PROJECT_SOURCE_DIR} ${inc})
    set_property(GLOBAL PROPERTY WARP_LAYER_PUBLIC_${name} ${rel_inc})
  endif()
  target_link_libraries(${name} ${scope} ${L_DEPS} ${L_PUBLIC_LIBS})
  if(L_PRIVATE_LIBS)
    target_link_libraries(${name} PRIVATE ${L_PRIVATE_LIBS})
  endif()
  # CAF headers are heavy (3-5 s a TU): layers that use CAF precompile them once.
  if(L_CAF_PCH AND sources)
    target_precompile_headers(${name} PRIVATE <caf/all.hpp> <caf/io/all.hpp>)
  endif()
  set_property(GLOBAL APPEND PROPERTY WARP_LAYERS ${name})
  set_property(GLOBAL PROPERTY WARP_LAYER_FOLDERS_${name} "${rel_folders}")
  set_property(GLOBAL PROPERTY WARP_LAYER_DEPS_${name} "${L_DEPS}")
endfunction()

# Fails the configure step when the layer graph has a cycle, and writes it to
# layers/graph.json for the include check (scripts/check_layers.py, ctest "layers:").
function(warp_check_layers)
  get_property(layers GLOBAL PROPERTY WARP_LAYERS)
  set(json "{\n  \"layers\": [\n")
  set(first TRUE)
  foreach(layer ${layers})
    get_property(deps GLOBAL PROPERTY WARP_LAYER_DEPS_${layer})
    get_property(folders GLOBAL PROPERTY WARP_LAYER_FOLDERS_${layer})
    get_property(public GLOBAL PROPERTY WARP_LAYER_PUBLIC_${layer})
    foreach(dep ${deps})
      if(NOT dep IN_LIST layers)
        message(FATAL_ERROR "layer ${layer}: dependency ${dep} is not a warp_layer target")
      endif()
    endforeach()
    string(REPLACE ";" "\", \"" deps_json "${deps}")
    string(REPLACE ";" "\", \"" folders_json "${folders}")
    if(deps)
      set(deps_json "\"${deps_json}\"")
    endif()
    if(NOT first)
      string(APPEND json ",\n")
    endif()
    set(first FALSE)
    string(APPEND json
           "    {\"name\": \"${layer}\", \"folders\": [\"${folders_json}\"], \"public\": \"${public}\", \"deps\": [${deps_json}]}")
  endforeach()
  string(APPEND json "\n  ]\n}\n")
  file(WRITE ${PROJECT_BINARY_DIR}/layers/graph.json "${json}")

  # Depth-first search; a layer met again while still on the path closes a cycle.
  set(done "")
  foreach(start ${layers})
    _warp_visit_layer(${start} "" done)
  endforeach()
endfunction()

function(_warp_visit_layer layer path done_var)
  set(done ${${done_var}})
  if(layer IN_LIST done)
    return()
  endif()
  if(layer IN_LIST path)
    list(APPEND path ${layer})
    list(FILTER path EXCLUDE REGEX "^$")
    string(REPLACE ";" " -> " shown "${path}")
    message(FATAL_ERROR "layer cycle: ${shown}")
  endif()
  get_property(deps GLOBAL PROPERTY WARP_LAYER_DEPS_${layer})
  foreach(dep ${deps})
    _warp_visit_layer(${dep} "${path};${layer}" done)
  endforeach()
  list(APPEND done ${layer})
  set(${done_var} ${done} PARENT_SCOPE)
endfunction()

# An executable on top of the layers: its own headers are linked like a layer's (by their
# repository path), and it sees only the layers it names.
#   warp_app(<target> DEPS <layer targets and libraries>...)
function(warp_app name)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(root ${PROJECT_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${root}/${rel})
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.hpp)
  foreach(header ${headers})
    get_filename_component(header_name ${header} NAME)
    if(NOT EXISTS ${root}/${rel}/${header_name})
      file(CREATE_LINK ${header} ${root}/${rel}/${header_name} SYMBOLIC)
    endif()
  endforeach()
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_executable(${name} ${sources})
  target_include_directories(${name} PRIVATE ${root})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
endfunction()
