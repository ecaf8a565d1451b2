module github.com/pmap/pmap/examples/go

go 1.23

require github.com/pmap/pmap/bindings/go v0.0.0

// The binding from this repository (build the library first: cargo build --release).
replace github.com/pmap/pmap/bindings/go => ../../bindings/go
