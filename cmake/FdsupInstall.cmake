# Installed files whose text names installed paths (fdsupd.service's ExecStart= and
# ExecReload=, the demo worker in the example configuration) are written when
# `cmake --install` (or cpack) runs, not when the build is configured: then they name
# the prefix installed into (`--prefix P`, the .deb's /usr), and DESTDIR is honoured as
# for every other file. Included by the CMakeLists.txt files that install them, and by
# the install scripts they generate.

# The functions run with these policies, in the project and in an install script alike.
cmake_policy(PUSH)
cmake_policy(VERSION 3.25)

# fdsup_installed_dir(<out> <dir> <value> <prefix>)
# The absolute directory of destination <value> for an installation into <prefix>:
# <value> itself if absolute, else <prefix>/<value>, where install() puts a relative
# DESTINATION. <dir> says what <value> is: for SYSCONFDIR, LOCALSTATEDIR and RUNSTATEDIR
# (a CMAKE_INSTALL_<dir> of GNUInstallDirs) its special cases hold, which GNUInstallDirs
# applies to the configured prefix only: /etc for prefix / or /usr, /etc/opt/PKG for
# /opt/PKG.
function(fdsup_installed_dir out dir value prefix)
  string(REGEX REPLACE "/+$" "" prefix "${prefix}")  # "/" becomes "", as in cmake_install.cmake
  set(state_dir FALSE)
  if(dir MATCHES "^(SYSCONFDIR|LOCALSTATEDIR|RUNSTATEDIR)$")
    set(state_dir TRUE)
  endif()
  if(IS_ABSOLUTE "${value}")
    set(path "${value}")
  elseif(state_dir AND prefix MATCHES "^(/usr)?$")
    set(path "/${value}")
  elseif(state_dir AND prefix MATCHES "^/opt/" AND NOT prefix MATCHES "^/opt/homebrew/")
    set(path "/${value}${prefix}")
  else()
    set(path "${prefix}/${value}")
  endif()
  set(${out} "${path}" PARENT_SCOPE)
endfunction()

# fdsup_install_configured(<template> <dir> <value> <subdir> <name> [KEEP_EXISTING])
# At install time, writes <template> with @FDSUPD@, @FDSUPCTL@, @FDSUP_CONFIG@ and
# @FDSUP_DEMO_WORKER@ replaced by the installed paths of fdsupd, fdsupctl, the
# configuration and the demo worker, and installs it as <name> in <subdir> (may be
# empty) of destination <value> (of kind <dir>, as for fdsup_installed_dir).
# KEEP_EXISTING: a file already there (an operator's configuration) is left alone.
function(fdsup_install_configured template dir value subdir name)
  cmake_parse_arguments(PARSE_ARGV 5 arg "KEEP_EXISTING" "" "")
  get_filename_component(template "${template}" ABSOLUTE)
  set(staged "${CMAKE_CURRENT_BINARY_DIR}/installed/${name}")
  install(CODE "include(\"${CMAKE_CURRENT_FUNCTION_LIST_FILE}\")
fdsup_install_configured_now(\"${template}\" \"${staged}\" \"${dir}\" \"${value}\" \"${subdir}\" \"${name}\"
  ${arg_KEEP_EXISTING}
  \"${CMAKE_INSTALL_SBINDIR}\" \"${CMAKE_INSTALL_BINDIR}\" \"${CMAKE_INSTALL_SYSCONFDIR}\" \"${CMAKE_INSTALL_DATADIR}\")")
endfunction()

# The install-time half of fdsup_install_configured: CMAKE_INSTALL_PREFIX is the prefix
# installed into; the last four arguments are the configured CMAKE_INSTALL_SBINDIR,
# _BINDIR, _SYSCONFDIR and _DATADIR.
function(fdsup_install_configured_now template staged dir value subdir name keep_existing
                                     sbindir bindir sysconfdir datadir)
  fdsup_installed_dir(FDSUPD SBINDIR "${sbindir}" "${CMAKE_INSTALL_PREFIX}")
  fdsup_installed_dir(FDSUPCTL BINDIR "${bindir}" "${CMAKE_INSTALL_PREFIX}")
  fdsup_installed_dir(FDSUP_CONFIG SYSCONFDIR "${sysconfdir}" "${CMAKE_INSTALL_PREFIX}")
  fdsup_installed_dir(FDSUP_DEMO_WORKER DATADIR "${datadir}" "${CMAKE_INSTALL_PREFIX}")
  string(APPEND FDSUPD "/fdsupd")
  string(APPEND FDSUPCTL "/fdsupctl")
  string(APPEND FDSUP_CONFIG "/fdsup/fdsup.toml")
  string(APPEND FDSUP_DEMO_WORKER "/fdsup/demo_http.py")
  fdsup_installed_dir(destination "${dir}" "${value}" "${CMAKE_INSTALL_PREFIX}")
  if(NOT subdir STREQUAL "")
    string(APPEND destination "/${subdir}")
  endif()
  configure_file("${template}" "${staged}" @ONLY)
  if(keep_existing AND EXISTS "$ENV{DESTDIR}${destination}/${name}")
    message(STATUS "Not overwritten: $ENV{DESTDIR}${destination}/${name} (it exists; "
                   "the file this installation would have put there: ${staged})")
    return()
  endif()
  file(INSTALL "${staged}" DESTINATION "${destination}")
endfunction()

cmake_policy(POP)
