//go:build pmap_debug

package pmap_test

const debugBuild = true
