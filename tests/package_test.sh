#!/usr/bin/env bash
# The Debian packages (cmake/packaging.cmake), checked as an administrator would meet them:
#   tests/package_test.sh --build-dir DIR   package DIR (scripts/package --no-build), then check
#   tests/package_test.sh DEB_DIR           check the .deb files in DEB_DIR
# Every package: its control fields, conffiles, a stripped binary of the stated architecture,
# and a Depends line that covers every library the binary links. The packages of this
# machine's architecture are then installed into an empty root (dpkg --root, maintainer
# scripts included, with DPKG_ROOT), and the test checks the files, the system users, the
# state folders and the config's permissions; verifies both units with systemd-analyze
# (any message fails, and a broken unit must be caught), scores their hardening with
# `systemd-analyze security`, checks the required directives; runs the installed server with
# the installed config and enrolls the installed agent, with the installed config, against
# it; then removes and purges both packages. The machine's own /etc/passwd and /etc/group
# must be untouched. CTest runs it (label package).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }
note() { echo "package_test: $*"; }

debs=""
build_dir=""
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  --build-dir) build_dir=${2:?--build-dir needs a folder} ;;
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
  *) debs=$(cd "$1" && pwd) ;;
esac
for tool in dpkg dpkg-deb readelf systemd-analyze systemd-sysusers; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found (scripts/setup installs dpkg-dev, binutils and systemd)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/edgeloop-package-test.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$build_dir" ]; then
  debs=$work/debs
  "$src/scripts/package" --no-build --out "$debs" "$build_dir" >/dev/null
fi
native=$(dpkg --print-architecture)
shopt -s nullglob
all_debs=("$debs"/*.deb)
shopt -u nullglob
[ ${#all_debs[@]} -gt 0 ] || fail "no .deb files in $debs"

# What each package must hold: binary, unit, config, sysusers file, state folders.
declare -A binary=([edgeloop]=/usr/bin/edgeloop [edgeloop-agent]=/usr/bin/edgeloop-agent)
declare -A config=([edgeloop]=/etc/edgeloop/server.yaml
                   [edgeloop-agent]=/etc/edgeloop-agent/agent.yaml)
declare -A dirs=([edgeloop]="/var/lib/edgeloop:750"
                 [edgeloop-agent]="/var/lib/edgeloop-agent:750 /var/lib/edgeloop-agent/incoming:2770")
field() { dpkg-deb -f "$1" "$2"; }

# --- Every package, whatever its architecture ---------------------------------------------
native_debs=()
declare -A seen=()
for deb in "${all_debs[@]}"; do
  name=$(field "$deb" Package)
  arch=$(field "$deb" Architecture)
  what="$(basename "$deb")"
  [ -n "${binary[$name]:-}" ] || fail "$what: unknown package $name"
  for f in Version Maintainer Description Depends; do
    [ -n "$(field "$deb" "$f")" ] || fail "$what: no $f field"
  done
  x=$work/x/$name-$arch
  mkdir -p "$x"
  dpkg-deb -x "$deb" "$x"
  dpkg-deb -e "$deb" "$x/DEBIAN"
  for f in "${binary[$name]}" "/lib/systemd/system/$name.service" "/usr/lib/sysusers.d/$name.conf" \
           "${config[$name]}"; do
    [ -f "$x$f" ] || fail "$what: no $f"
  done
  for s in postinst prerm postrm; do
    [ -x "$x/DEBIAN/$s" ] || fail "$what: no executable $s"
    sh -n "$x/DEBIAN/$s" || fail "$what: $s is not valid sh"
    ! grep -q '@PKG_' "$x/DEBIAN/$s" || fail "$what: $s has an unreplaced @PKG_...@"
  done
  grep -qx "${config[$name]}" "$x/DEBIAN/conffiles" || fail "$what: ${config[$name]} is no conffile"
  bin=$x${binary[$name]}
  machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
  case "$arch:$machine" in
    amd64:*X86-64*|arm64:*AArch64*) ;;
    *) fail "$what: Architecture $arch but the binary is for $machine" ;;
  esac
  ! readelf -S "$bin" | grep -q '\.symtab' || fail "$what: ${binary[$name]} is not stripped"
  ! readelf -d "$bin" | grep -qE '\((RPATH|RUNPATH)\)' ||
    fail "$what: ${binary[$name]} keeps a build RPATH"
  # Depends must name a package of every library the binary links. Package names are the
  # same on every architecture, so this machine's packages answer for an arm64 binary too.
  depends=" $(field "$deb" Depends | sed 's/([^)]*)//g; s/[,|]/ /g' | tr -s ' ') "
  for dep in adduser libc6; do
    [[ "$depends" == *" $dep "* ]] || fail "$what: Depends lacks $dep"
  done
  for soname in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    owners=$(dpkg -S "*/$soname" 2>/dev/null | sed 's|: /.*||' | tr ',' '\n' |
             sed 's/^ *//; s/:.*//' | sort -u)
    [ -n "$owners" ] || fail "$what: no package of this machine owns $soname"
    covered=0
    for o in $owners; do
      if [[ "$depends" == *" $o "* ]]; then covered=1; fi
    done
    [ "$covered" = 1 ] || fail "$what: links $soname (package ${owners//$'\n'/ }) but Depends lacks it"
  done
  note "$what: $(wc -c < "$deb") bytes, $(readelf -d "$bin" | grep -c NEEDED) libraries covered by Depends"
  if [ "$arch" = "$native" ]; then
    native_debs+=("$deb")
    seen[$name]=1
  fi
done
if [ -n "$build_dir" ]; then
  [ -n "${seen[edgeloop]:-}" ] && [ -n "${seen[edgeloop-agent]:-}" ] ||
    fail "scripts/package made no $native packages of both edgeloop and edgeloop-agent"
fi
[ ${#native_debs[@]} -gt 0 ] || { note "no $native packages: nothing to install"; exit 0; }

# --- Installed into an empty root ---------------------------------------------------------
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" \
         "$root/etc"
: > "$root/var/lib/dpkg/status"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
host_users=$(sha256sum /etc/passwd /etc/group)
# The maintainer scripts run on this machine with DPKG_ROOT set (they prefix every path
# with it); without root privileges dpkg and the scripts' chown run under fakeroot.
# One fakeroot session state across calls, so the owners it faked are the ones stat sees.
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v fakeroot >/dev/null || fail "not root and no fakeroot (scripts/setup installs it)"
  : > "$work/fakeroot.state"
  as_root=(fakeroot -i "$work/fakeroot.state" -s "$work/fakeroot.state")
fi
owner_mode() { "${as_root[@]}" stat -c '%u:%g %a' "$1"; }
dpkg_root() {
  "${as_root[@]}" dpkg --root="$root" --log=/dev/null --force-depends --force-not-root \
    --force-script-chrootless "$@"
}
dpkg_root -i "${native_debs[@]}" > "$work/dpkg-install.log" 2>&1 ||
  { cat "$work/dpkg-install.log" >&2; fail "dpkg -i into $root failed"; }
[ "$(sha256sum /etc/passwd /etc/group)" = "$host_users" ] ||
  fail "installing under --root changed this machine's /etc/passwd or /etc/group"

for name in "${!seen[@]}"; do
  status=$(dpkg --root="$root" -s "$name" | sed -n 's/^Status: //p')
  [ "$status" = "install ok installed" ] || fail "$name: status '$status' after install"
  for f in "${binary[$name]}" "/lib/systemd/system/$name.service" "${config[$name]}" \
           "/usr/lib/sysusers.d/$name.conf"; do
    [ -f "$root$f" ] || fail "$name: $f not installed"
  done
  [ -x "$root${binary[$name]}" ] || fail "$name: ${binary[$name]} not executable"
  # The system user: created in the root's own passwd, a system id, no login shell.
  entry=$(grep "^$name:" "$root/etc/passwd") || fail "$name: no user $name in the root's passwd"
  IFS=: read -r _ _ uid gid _ home shell <<< "$entry"
  [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "$name: uid $uid is not a system id"
  grep -q "^$name:x:$gid:" "$root/etc/group" || fail "$name: no group $name with gid $gid"
  [ "$home" = "/var/lib/$name" ] || fail "$name: home $home"
  [ "$shell" = /usr/sbin/nologin ] || fail "$name: shell $shell"
  for d in ${dirs[$name]}; do
    path=$root${d%:*}
    [ -d "$path" ] || fail "$name: state folder ${d%:*} missing"
    got=$(owner_mode "$path")
    [ "$got" = "$uid:$gid ${d##*:}" ] || fail "$name: ${d%:*} is $got, want $uid:$gid ${d##*:}"
  done
  got=$(owner_mode "$root${config[$name]}")
  [ "$got" = "0:$gid 640" ] || fail "$name: ${config[$name]} is $got, want 0:$gid 640"
done
note "installed into an empty root: files, users, state folders and config modes as expected"

# --- The units ----------------------------------------------------------------------------
# systemd-analyze --root resolves every path in the root: the binaries there are checked,
# and the root needs the targets a Debian system has (sysinit.target and the rest).
cp -n /lib/systemd/system/*.target "$root/lib/systemd/system/"
units=()
for name in "${!seen[@]}"; do units+=("$name.service"); done
verify() { systemd-analyze verify --root="$root" "$@" 2>&1; }
out=$(verify "${units[@]}") || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify reports: $out"
# The same check must catch a broken unit: a misspelled directive and a missing binary.
for broken in 's/^ProtectHome=yes/ProtectHome=sometimes/' 's|^ExecStart=/usr/bin/|ExecStart=/usr/bin/no-|'; do
  sed "$broken" "$root/lib/systemd/system/${units[0]}" > "$root/lib/systemd/system/broken.service"
  out=$(verify broken.service || true)
  [ -n "$out" ] || fail "systemd-analyze verify passed a broken unit ($broken)"
done
rm "$root/lib/systemd/system/broken.service"

for name in "${!seen[@]}"; do
  unit=$root/lib/systemd/system/$name.service
  required=(
    "User=$name" "Group=$name" "Restart=always" "StateDirectory=$name"
    "ProtectSystem=strict" "NoNewPrivileges=yes" "ProtectHome=yes" "PrivateTmp=yes"
    "PrivateDevices=yes" "ProtectKernelTunables=yes" "ProtectKernelModules=yes"
    "ProtectControlGroups=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
    "CapabilityBoundingSet=" "AmbientCapabilities=" "RestrictSUIDSGID=yes"
    "SystemCallArchitectures=native" "SystemCallFilter=@system-service"
  )
  for line in "${required[@]}"; do
    grep -qxF "$line" "$unit" || fail "$name.service lacks $line"
  done
  # The state folder is the one writable place.
  ! grep -qE '^(ReadWritePaths|ReadWriteDirectories)=' "$unit" ||
    fail "$name.service opens more than its StateDirectory"
  # ExecStart names the installed binary, the installed config, and flags the binary has.
  exec=$(sed -n 's/^ExecStart=//p' "$unit")
  read -r -a argv <<< "$exec"
  [ "${argv[0]}" = "${binary[$name]}" ] || fail "$name.service runs ${argv[0]}"
  [[ " $exec " == *" --config ${config[$name]} "* ]] || fail "$name.service: ExecStart lacks --config ${config[$name]}"
  if [ "$name" = edgeloop ]; then
    [ "${argv[1]}" = server ] || fail "edgeloop.service does not run edgeloop server"
    [[ " $exec " == *" --data /var/lib/edgeloop "* ]] || fail "edgeloop.service: data not in its StateDirectory"
    help=$("$root/usr/bin/edgeloop" server --help)
  else
    help=$("$root/usr/bin/edgeloop-agent" --help)
  fi
  for flag in "${argv[@]}"; do
    [[ "$flag" != --* ]] || grep -q -- "$flag" <<< "$help" || fail "$name.service: $flag is no flag of ${argv[0]}"
  done
  # systemd's own exposure score (0 safest .. 10): these units must stay in its "OK" band.
  score=$(systemd-analyze security --offline=yes --root="$root" "$name.service" 2>&1 |
          sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
  [ -n "$score" ] || fail "systemd-analyze security gave no score for $name.service"
  awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "$name.service: exposure $score above 2.5"
  note "$name.service: verified, hardening directives present, exposure $score"
done

# --- The installed binaries with the installed configs ------------------------------------
if [ -n "${seen[edgeloop]:-}" ]; then
  "$root/usr/bin/edgeloop" server --config "$root/etc/edgeloop/server.yaml" --print-config \
    > "$work/print-config" || fail "edgeloop server refuses the installed server.yaml"
  # As edgeloop.service starts it, but with the data folder in the root and any free port.
  "$root/usr/bin/edgeloop" server --config "$root/etc/edgeloop/server.yaml" \
    --data "$root/var/lib/edgeloop" --port 0 > "$work/server.out" 2> "$work/server.err" &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's|^edgeloop server listening on https://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/server.out")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; fail "the installed server exited"; }
    sleep 0.1
  done
  [ -n "$port" ] || fail "the installed server did not start listening in 10 s"
  ops=(--server "https://127.0.0.1:$port" --data "$root/var/lib/edgeloop")
  for f in ca.crt admin.token edgeloop.db; do
    [ -f "$root/var/lib/edgeloop/$f" ] || fail "the server wrote no $f into its state folder"
  done
  if [ -n "${seen[edgeloop-agent]:-}" ]; then
    token=$("$root/usr/bin/edgeloop" fleet enroll-token "${ops[@]}" --device pkg-test-1 --json |
            sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p')
    [ -n "$token" ] || fail "no enrollment token from the installed server"
    cp "$root/var/lib/edgeloop/ca.crt" "$root/etc/edgeloop-agent/ca.crt"
    # The installed agent.yaml with what an administrator fills in, its paths in the root.
    sed -e "s|/var/lib/edgeloop-agent|$root/var/lib/edgeloop-agent|g" \
        -e "s|/etc/edgeloop-agent|$root/etc/edgeloop-agent|g" \
        -e "s|^\(  id:\) CHANGE-ME|\1 pkg-test-1|" \
        -e "s|^\(  url:\) https://edgeloop.example.com:8443|\1 https://127.0.0.1:$port|" \
        -e "s|^\(  enrollment_token:\) PASTE-TOKEN|\1 $token|" \
        "$root/etc/edgeloop-agent/agent.yaml" > "$work/agent.yaml"
    grep -q "pkg-test-1" "$work/agent.yaml" && grep -q "$token" "$work/agent.yaml" ||
      fail "the installed agent.yaml lacks the device id or token placeholders"
    # No factory model is installed: the agent enrolls, then stops at the model (exit 3).
    rc=0
    timeout 60 "$root/usr/bin/edgeloop-agent" --config "$work/agent.yaml" > "$work/agent.out" 2>&1 || rc=$?
    [ "$rc" = 3 ] && grep -q "$root/etc/edgeloop-agent/model.onnx" "$work/agent.out" ||
      { cat "$work/agent.out" >&2; fail "the installed agent: exit $rc, want 3 at the missing model"; }
    [ -f "$root/var/lib/edgeloop-agent/identity/identity.json" ] ||
      fail "the installed agent wrote no identity into its state folder"
    "$root/usr/bin/edgeloop" fleet devices "${ops[@]}" --json | grep -q '"device_id": "pkg-test-1"' ||
      fail "the installed server does not list the enrolled agent"
    note "the installed agent enrolled with the installed server (state in /var/lib/edgeloop-agent)"
  fi
  kill "$server_pid"
  wait "$server_pid" || fail "the installed server did not exit 0 on SIGTERM"
  server_pid=""
fi

# --- Removed and purged -------------------------------------------------------------------
dpkg_root -r "${!seen[@]}" > "$work/dpkg-remove.log" 2>&1 ||
  { cat "$work/dpkg-remove.log" >&2; fail "dpkg -r failed"; }
dpkg_root -P "${!seen[@]}" > "$work/dpkg-purge.log" 2>&1 ||
  { cat "$work/dpkg-purge.log" >&2; fail "dpkg -P failed"; }
for name in "${!seen[@]}"; do
  for f in "${binary[$name]}" "/lib/systemd/system/$name.service" "${config[$name]}"; do
    [ ! -e "$root$f" ] || fail "$name: $f left after purge"
  done
  # Keys, identities and data stay, and so does the user that owns them.
  [ -d "$root/var/lib/$name" ] || fail "$name: purge deleted /var/lib/$name"
  grep -q "^$name:" "$root/etc/passwd" || fail "$name: purge deleted the user"
done
[ "$(sha256sum /etc/passwd /etc/group)" = "$host_users" ] ||
  fail "removing under --root changed this machine's /etc/passwd or /etc/group"
note "removed and purged: binaries, units and configs gone, state folders and users kept"
note "ok"
