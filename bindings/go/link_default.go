//go:build !pmap_pkgconfig

package pmap

// The in-repository default: the header from include/ and the shared library that
// `cargo build --release` leaves in target/release, found again at run time through an
// rpath. Build with -tags pmap_pkgconfig to take both from pkg-config instead, or add
// search paths with CGO_CFLAGS / CGO_LDFLAGS (see the package documentation).

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lpmap -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
