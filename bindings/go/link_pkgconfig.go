//go:build pmap_pkgconfig

package pmap

// With -tags pmap_pkgconfig the compiler and linker flags come from `pkg-config pmap`
// (a pmap.pc on PKG_CONFIG_PATH), as for an installed library.

/*
#cgo pkg-config: pmap
*/
import "C"
