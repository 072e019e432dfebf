# Debian packages (cpack, DEB generator, one package per install component):
#   edgeloop        component "server": the edgeloop command (server and CLI), edgeloop.service,
#                   /etc/edgeloop/server.yaml; built only with EDGELOOP_BUILD_SERVER
#   edgeloop-agent  component "agent": edgeloop-agent, edgeloop-agent.service,
#                   /etc/edgeloop-agent/agent.yaml; built by every preset (device-arm64 too)
# Each ships its systemd unit, its sysusers.d entry and maintainer scripts generated from
# deploy/debian/*.in. scripts/package runs cpack on build/ (and build-arm64/ when it exists);
# tests/package_test.sh installs the result into an empty root and checks it.
include_guard(GLOBAL)

set(EDGELOOP_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
set(EDGELOOP_UNIT_DIR /lib/systemd/system)
set(EDGELOOP_SYSUSERS_DIR /usr/lib/sysusers.d)

# edgeloop_deb_package(<component> PACKAGE name TARGET target CONFIG source destination
#                      DIRS path:mode... DESCRIPTION text)
# The install rules and per-component CPack settings of one package; its system user is
# named after the package, and so are its unit and sysusers file in deploy/systemd/.
function(edgeloop_deb_package component)
  cmake_parse_arguments(P "" "PACKAGE;TARGET;DESCRIPTION" "CONFIG;DIRS" ${ARGN})
  list(GET P_CONFIG 0 config_source)
  list(GET P_CONFIG 1 config_path)
  get_filename_component(config_dir ${config_path} DIRECTORY)
  get_filename_component(config_name ${config_path} NAME)

  install(TARGETS ${P_TARGET} RUNTIME DESTINATION bin COMPONENT ${component})
  install(FILES ${EDGELOOP_DEPLOY_DIR}/systemd/${P_PACKAGE}.service
          DESTINATION ${EDGELOOP_UNIT_DIR} COMPONENT ${component})
  install(FILES ${EDGELOOP_DEPLOY_DIR}/systemd/${P_PACKAGE}.sysusers.conf
          DESTINATION ${EDGELOOP_SYSUSERS_DIR} RENAME ${P_PACKAGE}.conf COMPONENT ${component})
  install(FILES ${config_source} DESTINATION ${config_dir} RENAME ${config_name}
          COMPONENT ${component})

  # Maintainer scripts and conffiles, into the control archive.
  set(PKG_NAME ${P_PACKAGE})
  set(PKG_USER ${P_PACKAGE})
  set(PKG_UNIT ${P_PACKAGE}.service)
  set(PKG_SYSUSERS ${P_PACKAGE}.conf)
  set(PKG_CONFIG ${config_path})
  list(JOIN P_DIRS " " PKG_DIRS)
  set(control_dir ${PROJECT_BINARY_DIR}/deb-control/${P_PACKAGE})
  set(control_files "")
  foreach(script postinst prerm postrm)
    configure_file(${EDGELOOP_DEPLOY_DIR}/debian/${script}.in ${control_dir}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    list(APPEND control_files ${control_dir}/${script})
  endforeach()
  file(WRITE ${control_dir}/conffiles "${config_path}\n")
  list(APPEND control_files ${control_dir}/conffiles)

  string(TOUPPER ${component} C)
  set(CPACK_DEBIAN_${C}_PACKAGE_NAME ${P_PACKAGE} PARENT_SCOPE)
  set(CPACK_DEBIAN_${C}_DESCRIPTION "${P_DESCRIPTION}" PARENT_SCOPE)
  set(CPACK_DEBIAN_${C}_PACKAGE_CONTROL_EXTRA ${control_files} PARENT_SCOPE)
endfunction()

set(EDGELOOP_PACKAGE_COMPONENTS agent)
edgeloop_deb_package(agent PACKAGE edgeloop-agent TARGET edgeloop-agent
  CONFIG ${EDGELOOP_DEPLOY_DIR}/config/agent.yaml /etc/edgeloop-agent/agent.yaml
  DIRS /var/lib/edgeloop-agent:0750 /var/lib/edgeloop-agent/incoming:2770
  DESCRIPTION "edgeloop edge agent
The device side of edgeloop: runs an ONNX model with edgeloop's own runtime (no libtorch),
samples and uploads data over mutual TLS with store-and-forward, reports telemetry and
drift, and installs signed model updates with probation and rollback. Ships
edgeloop-agent.service, hardened, running as the system user edgeloop-agent.")
if(EDGELOOP_BUILD_SERVER)
  list(APPEND EDGELOOP_PACKAGE_COMPONENTS server)
  edgeloop_deb_package(server PACKAGE edgeloop TARGET edgeloop
    CONFIG ${EDGELOOP_DEPLOY_DIR}/config/server.yaml /etc/edgeloop/server.yaml
    DIRS /var/lib/edgeloop:0750
    DESCRIPTION "edgeloop control plane and command line
The cloud side of edgeloop: the HTTPS server for a fleet of devices (enrollment, ingest,
model registry, dataset snapshots, retraining pipelines with libtorch, signed staged
rollouts) and the edgeloop command for operators, training and evaluation. Ships
edgeloop.service, hardened, running as the system user edgeloop.")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${EDGELOOP_PACKAGE_COMPONENTS})
set(CPACK_PACKAGE_NAME edgeloop)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(EDGELOOP_PACKAGE_CONTACT "edgeloop maintainers <maintainers@edgeloop.invalid>"
    CACHE STRING "Maintainer field of the Debian packages")
set(CPACK_PACKAGE_CONTACT "${EDGELOOP_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <package>_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# adduser: the postinst's fallback where systemd-sysusers is absent (container images).
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
if(CMAKE_CROSSCOMPILING)
  # dpkg-shlibdeps cannot derive a cross build's dependencies here (the arm64 ONNX library
  # is unpacked by scripts/arm64-build, not installed), so they are listed; the package test
  # checks the list against the libraries the agent links.
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
  else()
    message(FATAL_ERROR "packaging: no Debian architecture for ${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  file(STRINGS ${EDGELOOP_DEPLOY_DIR}/debian/edgeloop-agent.depends agent_depends
       REGEX "^[a-z0-9]")
  list(PREPEND agent_depends adduser)
  list(JOIN agent_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
include(CPack)
