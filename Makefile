# Build and install pmap as a system library: the shared library with a versioned soname,
# the static library, the C and C++ headers, a pkg-config file and a CMake package.
#
#   make                                 build the installable libraries (target/install)
#   make install PREFIX=/usr/local       install (DESTDIR=/stage for packaging)
#   make install-strip ...               the same, libraries without debug information
#   make uninstall PREFIX=/usr/local     remove exactly what `make install` put there
#   make install-test                    scripts/install_test.sh: install into a temporary
#                                        prefix, check it, build the consumer projects
#
# The layout follows cargo-c (`cargo cinstall`) with the header subdirectory turned off:
#
#   $(LIBDIR)/libpmap.so.X.Y.Z           the library (soname libpmap.so.$(SOVER))
#   $(LIBDIR)/libpmap.so.$(SOVER)        -> libpmap.so.X.Y.Z (what programs load)
#   $(LIBDIR)/libpmap.so                 -> libpmap.so.X.Y.Z (what -lpmap finds)
#   $(LIBDIR)/libpmap.a
#   $(INCLUDEDIR)/pmap.h, pmap.hpp
#   $(PKGCONFIGDIR)/pmap.pc
#   $(CMAKEDIR)/pmapConfig.cmake, pmapConfigVersion.cmake
#
# The version has one source: `version` in Cargo.toml. It reaches the header macros and
# pmap_version() through cargo, and the file names, the soname, pmap.pc and the CMake
# version file through this Makefile. scripts/install_test.sh checks that they agree.
#
# The installable libraries are built in their own target directory, so the soname link
# argument never reaches the in-tree build (target/release/libpmap.so has no soname and
# runs in place with -Ltarget/release -lpmap).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/pmap

CARGO ?= cargo
RUSTC ?= rustc
# Extra arguments for cargo, e.g. CARGO_FLAGS=--locked (native builds only: no --target).
CARGO_FLAGS ?=
INSTALL ?= install
INSTALL_TARGET_DIR ?= target/install

# --- the version, from Cargo.toml -----------------------------------------------------
# The first `version = "..."` of the [package] table.
VERSION := $(shell awk -F'"' '/^\[/ { pkg = ($$0 == "[package]") } pkg && /^version[ \t]*=/ { print $$2; exit }' Cargo.toml)
ifeq ($(strip $(VERSION)),)
$(error could not read the package version from Cargo.toml)
endif
# X.Y.Z without a pre-release or build suffix (0.2.0-rc.1 -> 0.2.0).
VERSION_CORE := $(firstword $(subst -, ,$(subst +, ,$(VERSION))))
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION_CORE)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION_CORE)))
VERSION_PATCH := $(word 3,$(subst ., ,$(VERSION_CORE)))

# The ABI version in the soname: MAJOR from 1.0 on, as the issue asks. Before 1.0, Cargo's
# semver rules make every 0.MINOR a breaking release (0.1 -> 0.2 may change the ABI), so
# a soname of libpmap.so.0 would let a program built against 0.1 load an incompatible
# 0.2. We therefore use 0.MINOR for 0.x (and 0.0.PATCH for 0.0.x), exactly as cargo-c
# does (LibraryCApiConfig::sover), so `cargo cinstall` and `make install` produce the
# same names. The CMake version file applies the same rule to find_package versions.
SOVER := $(if $(filter 0,$(VERSION_MAJOR)),$(if $(filter 0,$(VERSION_MINOR)),0.0.$(VERSION_PATCH),0.$(VERSION_MINOR)),$(VERSION_MAJOR))

LIB_LINK := libpmap.so
SONAME := libpmap.so.$(SOVER)
LIB_REAL := libpmap.so.$(VERSION_CORE)
LIB_STATIC := libpmap.a

# --- the installable build ----------------------------------------------------------------
BUILD_DIR := $(INSTALL_TARGET_DIR)/release
BUILT_SO := $(BUILD_DIR)/libpmap.so
BUILT_A := $(BUILD_DIR)/libpmap.a
BUILD_STAMP := $(INSTALL_TARGET_DIR)/pmap-$(VERSION).stamp
NATIVE_LIBS_FILE := $(INSTALL_TARGET_DIR)/native-static-libs.txt
POINTER_BYTES_FILE := $(INSTALL_TARGET_DIR)/sizeof-void-p.txt
BUILD_INPUTS := Makefile Cargo.toml Cargo.lock build.rs cbindgen.toml $(shell find src -type f 2>/dev/null)

# Read when a recipe runs, after the build wrote the file.
NATIVE_LIBS = $(strip $(shell cat $(NATIVE_LIBS_FILE) 2>/dev/null))
empty :=
space := $(empty) $(empty)
# -lpthread -lm -> pthread;m (a CMake list of library names; other flags pass as they are)
NATIVE_LIBS_CMAKE = $(subst $(space),;,$(patsubst -l%,%,$(NATIVE_LIBS)))

# --- install paths --------------------------------------------------------------------------
ifeq ($(filter /%,$(PREFIX)),)
$(error PREFIX must be an absolute path, got '$(PREFIX)')
endif
D_LIBDIR = $(DESTDIR)$(LIBDIR)
D_INCLUDEDIR = $(DESTDIR)$(INCLUDEDIR)
D_PKGCONFIGDIR = $(DESTDIR)$(PKGCONFIGDIR)
D_CMAKEDIR = $(DESTDIR)$(CMAKEDIR)

# pmap.pc names its directories through ${prefix} where it can, like cargo-c's.
PC_LIBDIR = $(patsubst $(PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
# The CMake package finds the libraries and headers relative to its own directory, so an
# installed tree still works after it is moved or unpacked elsewhere.
CMAKE_REL_LIBDIR = $(shell realpath -m --relative-to='$(CMAKEDIR)' '$(LIBDIR)')
CMAKE_REL_INCLUDEDIR = $(shell realpath -m --relative-to='$(CMAKEDIR)' '$(INCLUDEDIR)')
# For the CMake version file's 32/64-bit check: the pointer size in bytes of the target
# the build was for (recorded by the build from `rustc --print cfg`).
SIZEOF_VOID_P = $(shell cat $(POINTER_BYTES_FILE) 2>/dev/null)

RENDER = sed \
	-e 's|@PMAP_VERSION@|$(VERSION)|g' \
	-e 's|@PMAP_VERSION_CORE@|$(VERSION_CORE)|g' \
	-e 's|@PMAP_SOVER@|$(SOVER)|g' \
	-e 's|@PMAP_SONAME@|$(SONAME)|g' \
	-e 's|@PMAP_LIB_REAL@|$(LIB_REAL)|g' \
	-e 's|@PMAP_LIB_STATIC@|$(LIB_STATIC)|g' \
	-e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@PC_LIBDIR@|$(PC_LIBDIR)|g' \
	-e 's|@PC_INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	-e 's|@NATIVE_STATIC_LIBS@|$(NATIVE_LIBS)|g' \
	-e 's|@NATIVE_STATIC_LIBS_CMAKE@|$(NATIVE_LIBS_CMAKE)|g' \
	-e 's|@CMAKE_REL_LIBDIR@|$(CMAKE_REL_LIBDIR)|g' \
	-e 's|@CMAKE_REL_INCLUDEDIR@|$(CMAKE_REL_INCLUDEDIR)|g' \
	-e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g'

.PHONY: all build install install-strip uninstall install-test clean-install print-version help
all: build

build: $(BUILD_STAMP)

# One rustc run makes both libraries. `-- ...` reaches only pmap's own rustc call: the
# soname goes to the cdylib's link, and --print native-static-libs reports the system
# libraries a program linking libpmap.a needs (cargo replays the note when fresh).
$(BUILD_STAMP): $(BUILD_INPUTS)
	@mkdir -p $(INSTALL_TARGET_DIR)
	@rm -f $(INSTALL_TARGET_DIR)/pmap-*.stamp
	CARGO_TARGET_DIR=$(INSTALL_TARGET_DIR) $(CARGO) rustc --release --lib \
	    --crate-type cdylib,staticlib $(CARGO_FLAGS) -- \
	    -C link-arg=-Wl,-soname,$(SONAME) --print native-static-libs \
	    2>&1 | tee $(INSTALL_TARGET_DIR)/rustc.log
	sed -e 's/\x1b\[[0-9;]*m//g' $(INSTALL_TARGET_DIR)/rustc.log \
	    | sed -n 's/^note: native-static-libs: *//p' | tail -n 1 > $(NATIVE_LIBS_FILE)
	@test -s $(NATIVE_LIBS_FILE) || { echo "no native-static-libs note in $(INSTALL_TARGET_DIR)/rustc.log" >&2; exit 1; }
	@test -f $(BUILT_SO) && test -f $(BUILT_A)
	bits=$$($(RUSTC) --print cfg | sed -n 's/^target_pointer_width="\(.*\)"/\1/p'); \
	    echo $$((bits / 8)) > $(POINTER_BYTES_FILE)
	@echo "native static libs: $$(cat $(NATIVE_LIBS_FILE))"
	@touch $@

install: $(BUILD_STAMP)
	$(INSTALL) -d '$(D_LIBDIR)' '$(D_INCLUDEDIR)' '$(D_PKGCONFIGDIR)' '$(D_CMAKEDIR)'
	$(INSTALL) -m 0755 $(BUILT_SO) '$(D_LIBDIR)/$(LIB_REAL)'
	if [ '$(SONAME)' != '$(LIB_REAL)' ]; then ln -sfn '$(LIB_REAL)' '$(D_LIBDIR)/$(SONAME)'; fi
	ln -sfn '$(LIB_REAL)' '$(D_LIBDIR)/$(LIB_LINK)'
	$(INSTALL) -m 0644 $(BUILT_A) '$(D_LIBDIR)/$(LIB_STATIC)'
	$(INSTALL) -m 0644 include/pmap.h '$(D_INCLUDEDIR)/pmap.h'
	$(INSTALL) -m 0644 bindings/cpp/pmap.hpp '$(D_INCLUDEDIR)/pmap.hpp'
	$(RENDER) packaging/pmap.pc.in > '$(D_PKGCONFIGDIR)/pmap.pc'
	$(RENDER) packaging/pmapConfig.cmake.in > '$(D_CMAKEDIR)/pmapConfig.cmake'
	$(RENDER) packaging/pmapConfigVersion.cmake.in > '$(D_CMAKEDIR)/pmapConfigVersion.cmake'
	chmod 0644 '$(D_PKGCONFIGDIR)/pmap.pc' '$(D_CMAKEDIR)/pmapConfig.cmake' '$(D_CMAKEDIR)/pmapConfigVersion.cmake'
	@if grep -q '@[A-Z_]*@' '$(D_PKGCONFIGDIR)/pmap.pc' '$(D_CMAKEDIR)/pmapConfig.cmake' '$(D_CMAKEDIR)/pmapConfigVersion.cmake'; then \
	    echo "an @VARIABLE@ was left unrendered" >&2; exit 1; fi

# GNU's install-strip: the same, without debug information (release builds keep
# `debug = 1` from Cargo.toml; distributions usually strip into their own -dbg packages).
install-strip: install
	strip --strip-debug '$(D_LIBDIR)/$(LIB_REAL)' '$(D_LIBDIR)/$(LIB_STATIC)'

# Removes the files of this version; other versions' libpmap.so.* stay (they may be in
# use). Directories are left in place, except the CMake package's own.
uninstall:
	rm -f '$(D_LIBDIR)/$(LIB_REAL)' '$(D_LIBDIR)/$(SONAME)' '$(D_LIBDIR)/$(LIB_LINK)' \
	    '$(D_LIBDIR)/$(LIB_STATIC)' '$(D_INCLUDEDIR)/pmap.h' '$(D_INCLUDEDIR)/pmap.hpp' \
	    '$(D_PKGCONFIGDIR)/pmap.pc' '$(D_CMAKEDIR)/pmapConfig.cmake' \
	    '$(D_CMAKEDIR)/pmapConfigVersion.cmake'
	if [ -d '$(D_CMAKEDIR)' ]; then rmdir '$(D_CMAKEDIR)' 2>/dev/null || true; fi

install-test:
	scripts/install_test.sh

clean-install:
	rm -rf $(INSTALL_TARGET_DIR)

print-version:
	@echo 'VERSION=$(VERSION)'
	@echo 'VERSION_CORE=$(VERSION_CORE)'
	@echo 'SOVER=$(SOVER)'
	@echo 'SONAME=$(SONAME)'
	@echo 'LIB_REAL=$(LIB_REAL)'

help:
	@sed -n '1,9p' Makefile | sed 's/^# \{0,1\}//'
