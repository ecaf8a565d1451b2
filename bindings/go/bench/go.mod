module github.com/pmap/pmap/bindings/go/bench

go 1.24.0

replace github.com/pmap/pmap/bindings/go => ../

require (
	github.com/pmap/pmap/bindings/go v0.0.0-00010101000000-000000000000
	github.com/sourcegraph/conc v0.3.0
	golang.org/x/sync v0.18.0
)

require (
	go.uber.org/atomic v1.7.0 // indirect
	go.uber.org/multierr v1.9.0 // indirect
)
