#!/usr/bin/env bash
# The installed library, tested as its users will meet it.
#
# Installs pmap (`make install`) into a fresh temporary prefix, then checks:
#   layout     exactly the expected files; the symlink chain; headers identical to the tree
#   soname     readelf -d: SONAME is libpmap.so.<sover>; no RPATH/RUNPATH in the library
#   exports    nm -D --defined-only: only pmap_* symbols, exactly the functions of pmap.h;
#              libpmap.a defines every one of them
#   versions   Cargo.toml == header macros == pmap_version() (C, C++ and Go) == pmap.pc ==
#              the CMake version file (and its compatibility rule) == the soname and file
#              names == the Makefile's reading == the newest CHANGELOG.md release
#   consumers  four projects copied outside the source tree, seeing only the prefix:
#              (1) C + pkg-config, shared  (2) C + libpmap.a with `pkg-config --static --libs`
#              (3) C++ + CMake find_package(pmap), pmap::cpp (and a C program on
#                  pmap::pmap_static), also against the prefix moved elsewhere
#              (4) the Go binding with -tags pmap_pkgconfig through pkg-config
#   staging    make install/uninstall with DESTDIR
#   uninstall  `make uninstall` leaves no file or link of ours in the prefix
# Exits non-zero on the first failure.
#
# PMAP_KEEP_INSTALL_TEST=1 keeps the temporary directory; PMAP_INSTALL_TEST_GO_TESTS=1 also
# runs the Go binding's own tests against the installed library.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n== install test: %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() {
  printf 'install test FAILED: %s\n' "$*" >&2
  exit 1
}

for tool in cargo make cc c++ pkg-config cmake readelf nm ldd go realpath; do
  command -v "$tool" >/dev/null || fail "'$tool' is required and was not found"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pmap-install-test.XXXXXX")
WORK=$(realpath "$WORK")
cleanup() {
  if [ "${PMAP_KEEP_INSTALL_TEST:-0}" = 1 ]; then
    echo "install test: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
PREFIX=$WORK/prefix
LIB=$PREFIX/lib

# Nothing but the prefix may reach the consumers: no inherited search paths.
unset CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH LD_LIBRARY_PATH LD_RUN_PATH \
  PKG_CONFIG_PATH CMAKE_PREFIX_PATH CGO_CFLAGS CGO_CPPFLAGS CGO_CXXFLAGS CGO_LDFLAGS GOFLAGS \
  MAKEFLAGS MFLAGS

# --- what to expect, from Cargo.toml (read independently of the Makefile) ----------------
metadata=$(cargo metadata --no-deps --format-version 1 --manifest-path Cargo.toml)
if command -v python3 >/dev/null; then
  VERSION=$(python3 -c 'import json, sys
print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "pmap"))' <<<"$metadata")
elif command -v jq >/dev/null; then
  VERSION=$(jq -r '.packages[] | select(.name == "pmap") | .version' <<<"$metadata")
else
  VERSION=$(grep -o '"version":"[^"]*"' <<<"$metadata" | head -n 1 | cut -d'"' -f4)
fi
[ -n "$VERSION" ] || fail "could not read the version from cargo metadata"
CORE=${VERSION%%[-+]*}
IFS=. read -r MAJOR MINOR PATCH <<<"$CORE"
if [ "$MAJOR" = 0 ] && [ "$MINOR" = 0 ]; then
  SOVER=0.0.$PATCH
elif [ "$MAJOR" = 0 ]; then
  SOVER=0.$MINOR
else
  SOVER=$MAJOR
fi
SONAME=libpmap.so.$SOVER
REAL=libpmap.so.$CORE
echo "install test: pmap $VERSION, soname $SONAME, prefix $PREFIX"

step "make install PREFIX=$PREFIX"
make --no-print-directory install PREFIX="$PREFIX"

step "layout"
expected=(
  "$LIB/$REAL" "$LIB/$SONAME" "$LIB/libpmap.so" "$LIB/libpmap.a"
  "$PREFIX/include/pmap.h" "$PREFIX/include/pmap.hpp" "$LIB/pkgconfig/pmap.pc"
  "$LIB/cmake/pmap/pmapConfig.cmake" "$LIB/cmake/pmap/pmapConfigVersion.cmake"
)
[ "$SONAME" = "$REAL" ] && expected=("${expected[@]:0:1}" "${expected[@]:2}") # 0.0.x: one name
diff <(printf '%s\n' "${expected[@]}" | sort) <(find "$PREFIX" \( -type f -o -type l \) | sort) ||
  fail "the installed files differ from the expected list (< expected, > installed)"
ok "exactly the ${#expected[@]} expected files"
[ -f "$LIB/$REAL" ] && [ ! -L "$LIB/$REAL" ] || fail "$REAL is not a regular file"
if [ "$SONAME" != "$REAL" ]; then
  [ "$(readlink "$LIB/$SONAME")" = "$REAL" ] || fail "$SONAME does not point to $REAL"
fi
[ "$(readlink "$LIB/libpmap.so")" = "$REAL" ] || fail "libpmap.so does not point to $REAL"
ok "$REAL, with $SONAME and libpmap.so linking to it"
cmp -s include/pmap.h "$PREFIX/include/pmap.h" || fail "installed pmap.h differs from include/pmap.h"
cmp -s bindings/cpp/pmap.hpp "$PREFIX/include/pmap.hpp" || fail "installed pmap.hpp differs from bindings/cpp/pmap.hpp"
ok "pmap.h and pmap.hpp are the tree's"

step "soname (readelf -d)"
dyn=$(readelf -d "$LIB/$REAL")
got_soname=$(sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p' <<<"$dyn")
[ "$got_soname" = "$SONAME" ] || fail "SONAME is '$got_soname', want '$SONAME'"
ok "SONAME $got_soname"
! grep -qE '\((RPATH|RUNPATH)\)' <<<"$dyn" || fail "the installed library carries an RPATH/RUNPATH: $(grep -E 'RPATH|RUNPATH' <<<"$dyn")"
ok "no RPATH/RUNPATH"
if [ -f target/release/libpmap.so ]; then
  ! grep -q SONAME <<<"$(readelf -d target/release/libpmap.so)" || fail "the in-tree target/release/libpmap.so got a soname"
  ok "the in-tree target/release/libpmap.so still has none"
fi

step "exported symbols (nm -D --defined-only)"
exports=$(nm -D --defined-only "$LIB/$REAL" | awk 'NF >= 3 { print $3 }' | sort -u)
[ -n "$exports" ] || fail "no exported symbols"
leaks=$(grep -v '^pmap_' <<<"$exports" || true)
[ -z "$leaks" ] || fail "symbols other than pmap_* are exported:
$leaks"
ok "$(wc -l <<<"$exports") symbols, all pmap_*"
declared=$(grep -vE '^[[:space:]]*(/\*|\*)' "$PREFIX/include/pmap.h" | grep -oE '\bpmap_[a-z0-9_]+\(' | tr -d '(' | sort -u)
diff <(echo "$declared") <(echo "$exports") ||
  fail "exported functions differ from those declared in pmap.h (< declared only, > exported only)"
ok "exactly the $(wc -l <<<"$declared") functions declared in pmap.h"
static_defs=$(nm --defined-only "$LIB/libpmap.a" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$static_defs"))
[ -z "$missing" ] || fail "libpmap.a does not define: $missing"
ok "libpmap.a defines all of them"

step "versions agree with Cargo.toml ($VERSION)"
export PKG_CONFIG_PATH=$LIB/pkgconfig
header_macro() { sed -n "s/^#define $1 \(.*\)$/\1/p" "$PREFIX/include/pmap.h"; }
[ "$(header_macro PMAP_VERSION_MAJOR)" = "$MAJOR" ] || fail "PMAP_VERSION_MAJOR is $(header_macro PMAP_VERSION_MAJOR)"
[ "$(header_macro PMAP_VERSION_MINOR)" = "$MINOR" ] || fail "PMAP_VERSION_MINOR is $(header_macro PMAP_VERSION_MINOR)"
[ "$(header_macro PMAP_VERSION_PATCH)" = "$PATCH" ] || fail "PMAP_VERSION_PATCH is $(header_macro PMAP_VERSION_PATCH)"
[ "$(header_macro PMAP_VERSION_STRING)" = "\"$VERSION\"" ] || fail "PMAP_VERSION_STRING is $(header_macro PMAP_VERSION_STRING)"
ok "pmap.h: PMAP_VERSION_MAJOR/MINOR/PATCH/STRING"
[ "$(pkg-config --modversion pmap)" = "$VERSION" ] || fail "pmap.pc Version is $(pkg-config --modversion pmap)"
[ "$(pkg-config --variable=prefix pmap)" = "$PREFIX" ] || fail "pmap.pc prefix is $(pkg-config --variable=prefix pmap)"
ok "pmap.pc: Version $(pkg-config --modversion pmap), prefix $PREFIX"
make_version=$(make --no-print-directory -s print-version)
grep -qx "VERSION=$VERSION" <<<"$make_version" && grep -qx "SONAME=$SONAME" <<<"$make_version" &&
  grep -qx "LIB_REAL=$REAL" <<<"$make_version" || fail "the Makefile reads: $make_version"
ok "the Makefile reads $VERSION and names $SONAME, $REAL"
changelog=$(sed -n 's/^## \[\([0-9][^]]*\)\].*/\1/p' CHANGELOG.md | head -n 1)
[ "$changelog" = "$VERSION" ] || fail "the newest release in CHANGELOG.md is '$changelog', want $VERSION"
ok "CHANGELOG.md: newest release $changelog"
# The CMake version file, as find_package would ask it (no compiler needed).
next_series=$([ "$MAJOR" = 0 ] && echo "0.$((MINOR + 1))" || echo "$((MAJOR + 1))")
cat >"$WORK/version_check.cmake" <<EOF
function(ask request)
  set(PACKAGE_FIND_VERSION "\${request}")
  include("$LIB/cmake/pmap/pmapConfigVersion.cmake")
  message("\${request}|\${PACKAGE_VERSION}|\${PACKAGE_VERSION_COMPATIBLE}|\${PACKAGE_VERSION_EXACT}")
endfunction()
ask("$CORE")
ask("$SOVER")
ask("$MAJOR.$MINOR.$((PATCH + 1))")
ask("$next_series")
ask("$((MAJOR + 1)).0")
EOF
answers=$(cmake -P "$WORK/version_check.cmake" 2>&1)
want="$CORE|$CORE|TRUE|TRUE
$SOVER|$CORE|TRUE|
$MAJOR.$MINOR.$((PATCH + 1))|$CORE|FALSE|
$next_series|$CORE|FALSE|
$((MAJOR + 1)).0|$CORE|FALSE|"
[ "$answers" = "$want" ] || fail "pmapConfigVersion.cmake answers (request|version|compatible|exact):
$answers
want:
$want"
ok "pmapConfigVersion.cmake: version $CORE; accepts $CORE (exact) and $SOVER; refuses $MAJOR.$MINOR.$((PATCH + 1)), $next_series, $((MAJOR + 1)).0"
# Libs.private against what rustc itself says the standard library needs.
echo '' >"$WORK/empty.rs"
std_libs=$(rustc --crate-type staticlib --crate-name empty --print native-static-libs \
  -o "$WORK/libempty.a" "$WORK/empty.rs" 2>&1 | sed -n 's/.*native-static-libs: //p')
[ -n "$std_libs" ] || fail "rustc printed no native-static-libs"
static_flags=" $(pkg-config --static --libs pmap) "
for flag in $std_libs; do
  [[ "$static_flags" == *" $flag "* ]] || fail "pkg-config --static --libs lacks $flag (rustc: $std_libs)"
done
ok "pkg-config --static --libs pmap: $(pkg-config --static --libs pmap)"

check_version_line() { # program output, what printed it
  local got
  got=$(sed -n 's/^pmap_version=//p' <<<"$1")
  [ "$got" = "$VERSION" ] || fail "$2: pmap_version() is '$got', want $VERSION"
  ok "$2: pmap_version() = $got"
}
needs_installed_lib() { # binary: loads $SONAME, found in the prefix
  local needed
  needed=$(readelf -d "$1" | sed -n 's/.*Shared library: \[\(libpmap[^]]*\)\].*/\1/p')
  [ "$needed" = "$SONAME" ] || fail "$1 needs '$needed', want $SONAME"
  local deps
  deps=$(ldd "$1")
  grep -qF "$SONAME => $2/$SONAME " <<<"$deps" || fail "$1 does not load $SONAME from $2: $(grep pmap <<<"$deps")"
  ok "$(basename "$1") needs $SONAME and loads it from $2"
}
is_static() { # binary: pmap linked in, no libpmap.so needed
  ! grep -q 'Shared library: \[libpmap' <<<"$(readelf -d "$1")" || fail "$1 needs libpmap.so; it should be static"
  grep -q ' T pmap_new$' <<<"$(nm "$1")" || fail "$1 does not contain pmap_new"
  ok "$(basename "$1") contains pmap and needs no libpmap.so"
}

C=$WORK/consumers
mkdir -p "$C"
cp -R packaging/consumers/. "$C/"
# The Go consumer's go.mod points at ../go-binding: a copy of the package, as `go get`
# would fetch it, without the rest of the tree.
mkdir -p "$C/go-binding"
cp -R bindings/go/. "$C/go-binding/"

step "consumer 1: C, pkg-config, shared library"
make --no-print-directory -C "$C/c-pkgconfig"
hdr=$(cd "$C/c-pkgconfig" && cc $(pkg-config --cflags pmap) -M main.c | tr ' \\' '\n\n' | grep '/pmap\.h$')
[ "$hdr" = "$PREFIX/include/pmap.h" ] || fail "consumer 1 compiled against '$hdr'"
ok "compiled against $hdr"
needs_installed_lib "$C/c-pkgconfig/consumer" "$LIB"
out=$("$C/c-pkgconfig/consumer") || fail "consumer 1 failed: $out"
check_version_line "$out" "consumer 1"

step "consumer 2: C, static library, pkg-config --static --libs"
make --no-print-directory -C "$C/c-static"
is_static "$C/c-static/consumer"
out=$("$C/c-static/consumer") || fail "consumer 2 failed: $out"
check_version_line "$out" "consumer 2"

cmake_consumer() { # prefix, build dir
  cmake -S "$C/cpp-cmake" -B "$2" -DCMAKE_PREFIX_PATH="$1" -DPMAP_REQUIRE_VERSION="$CORE" \
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON -DCMAKE_BUILD_TYPE=Release >"$2.log" 2>&1 ||
    { cat "$2.log"; fail "cmake could not configure consumer 3 against $1"; }
  cmake --build "$2" >>"$2.log" 2>&1 || { cat "$2.log"; fail "consumer 3 did not build against $1"; }
  grep -qx "version=$CORE" "$2/pmap_found.txt" || fail "find_package: $(cat "$2/pmap_found.txt")"
  grep -qx "dir=$1/lib/cmake/pmap" "$2/pmap_found.txt" || fail "find_package: $(cat "$2/pmap_found.txt")"
  ok "find_package(pmap $CORE) found pmap_VERSION $CORE in $1/lib/cmake/pmap"
  grep -rq -- "-isystem $1/include" "$2/CMakeFiles/consumer_cpp.dir/flags.make" ||
    fail "consumer_cpp does not compile with -isystem $1/include"
  needs_installed_lib "$2/consumer_cpp" "$1/lib"
  out=$("$2/consumer_cpp") || fail "consumer 3 (C++) failed: $out"
  check_version_line "$out" "consumer 3, pmap::cpp"
  is_static "$2/consumer_c_static"
  out=$("$2/consumer_c_static") || fail "consumer 3 (C, static) failed: $out"
  check_version_line "$out" "consumer 3, pmap::pmap_static"
}
step "consumer 3: C++, CMake find_package(pmap), pmap::cpp and pmap::pmap_static"
cmake_consumer "$PREFIX" "$C/cpp-cmake-build"
step "consumer 3 again, with the prefix moved elsewhere (relocatable CMake package)"
mv "$PREFIX" "$WORK/moved"
cmake_consumer "$WORK/moved" "$C/cpp-cmake-moved"
mv "$WORK/moved" "$PREFIX"

step "consumer 4: the Go binding, -tags pmap_pkgconfig, through pkg-config"
(
  cd "$C/go-pkgconfig"
  GOWORK=off GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=1 CGO_LDFLAGS="-Wl,-rpath,$LIB" \
    go build -tags pmap_pkgconfig -o consumer .
) || fail "consumer 4 did not build"
needs_installed_lib "$C/go-pkgconfig/consumer" "$LIB"
out=$("$C/go-pkgconfig/consumer") || fail "consumer 4 failed: $out"
check_version_line "$out" "consumer 4, pmap.Version()"
if [ "${PMAP_INSTALL_TEST_GO_TESTS:-0}" = 1 ]; then
  (
    cd "$C/go-binding"
    GOWORK=off GOPROXY=off CGO_ENABLED=1 CGO_LDFLAGS="-Wl,-rpath,$LIB" \
      go test -tags pmap_pkgconfig -count=1 ./...
  ) || fail "the Go binding's tests failed against the installed library"
  ok "the Go binding's own tests pass against the installed library"
fi
unset PKG_CONFIG_PATH

step "DESTDIR staging"
STAGE=$WORK/stage
make --no-print-directory install DESTDIR="$STAGE" PREFIX=/opt/pmap >/dev/null
[ -f "$STAGE/opt/pmap/lib/$REAL" ] || fail "DESTDIR install did not create $STAGE/opt/pmap/lib/$REAL"
grep -qx 'prefix=/opt/pmap' "$STAGE/opt/pmap/lib/pkgconfig/pmap.pc" || fail "the staged pmap.pc does not name prefix=/opt/pmap"
[ "$(find "$STAGE" \( -type f -o -type l \) | wc -l)" = "${#expected[@]}" ] || fail "the staged install has other files"
make --no-print-directory uninstall DESTDIR="$STAGE" PREFIX=/opt/pmap >/dev/null
[ -z "$(find "$STAGE" \( -type f -o -type l \))" ] || fail "files left after a staged uninstall"
ok "install and uninstall under DESTDIR, pmap.pc names the final prefix"

step "make uninstall PREFIX=$PREFIX"
make --no-print-directory uninstall PREFIX="$PREFIX"
left=$(find "$PREFIX" \( -type f -o -type l \))
[ -z "$left" ] || fail "files left in the prefix after uninstall:
$left"
ok "no file or link left in $PREFIX"

step "all install checks passed"
