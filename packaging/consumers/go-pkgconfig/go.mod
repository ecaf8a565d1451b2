module example.com/pmapconsumer

go 1.23

require github.com/pmap/pmap/bindings/go v0.0.0

// A user gets the binding from its module path; the test places a copy of bindings/go
// here, so that nothing else of the source tree is in reach.
replace github.com/pmap/pmap/bindings/go => ../go-binding
