# Provides the imported target h3q::quiche: quiche's C API (quiche.h) plus
# the shim functions from deps/quiche/src/lib.rs, declared in
# src/quic/quiche_ext.h.
#
# Default: build deps/quiche with cargo (pinned by its Cargo.lock). The
# custom command depends on the crate's files only, so a second build does
# not rebuild quiche. With H3Q_SYSTEM_QUICHE=ON, quiche comes from
# pkg-config (the shim functions are then compiled out; see quiche_ext.h).
add_library(h3q::quiche INTERFACE IMPORTED)

if(H3Q_SYSTEM_QUICHE)
  pkg_check_modules(QUICHE REQUIRED IMPORTED_TARGET quiche)
  target_link_libraries(h3q::quiche INTERFACE PkgConfig::QUICHE)
  target_compile_definitions(h3q::quiche INTERFACE H3Q_SYSTEM_QUICHE=1)
  return()
endif()

set(QUICHE_CRATE ${PROJECT_SOURCE_DIR}/deps/quiche)
set(QUICHE_TARGET_DIR ${QUICHE_CRATE}/target)
set(QUICHE_LIB ${QUICHE_TARGET_DIR}/release/libh3q_quiche.a)
set(QUICHE_INCLUDE ${QUICHE_TARGET_DIR}/include)

# h3q's patches to quiche (deps/quiche/patches/README.md); a new or changed
# patch rebuilds quiche, and so does one removed or renamed (the folder
# changes).
file(GLOB QUICHE_PATCHES CONFIGURE_DEPENDS ${QUICHE_CRATE}/patches/*.patch)

add_custom_command(
  OUTPUT ${QUICHE_LIB} ${QUICHE_INCLUDE}/quiche.h
  COMMAND ${PROJECT_SOURCE_DIR}/scripts/build-quiche.sh
  DEPENDS ${QUICHE_CRATE}/Cargo.toml ${QUICHE_CRATE}/Cargo.lock
          ${QUICHE_CRATE}/src/lib.rs ${PROJECT_SOURCE_DIR}/scripts/build-quiche.sh
          ${PROJECT_SOURCE_DIR}/scripts/quiche-source.sh ${QUICHE_PATCHES}
          ${QUICHE_CRATE}/patches # a patch removed or renamed
  COMMENT "Building quiche and the h3q shim with cargo (first time: several minutes)"
  VERBATIM)
add_custom_target(quiche_build DEPENDS ${QUICHE_LIB} ${QUICHE_INCLUDE}/quiche.h)

file(MAKE_DIRECTORY ${QUICHE_INCLUDE})
add_library(h3q_quiche_archive STATIC IMPORTED)
set_target_properties(h3q_quiche_archive PROPERTIES IMPORTED_LOCATION ${QUICHE_LIB})
add_dependencies(h3q_quiche_archive quiche_build)
target_include_directories(h3q::quiche INTERFACE ${QUICHE_INCLUDE})
# Native libraries the Rust staticlib needs (cargo --print native-static-libs).
target_link_libraries(h3q::quiche INTERFACE h3q_quiche_archive stdc++ gcc_s util rt
                      pthread m dl c)
