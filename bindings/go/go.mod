module github.com/pmap/pmap/bindings/go

go 1.23
