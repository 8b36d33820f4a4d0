module github.com/hotreload/plugin-operator/examples/featureflags

go 1.26.0

require (
	github.com/hotreload/plugin-operator v0.0.0-00010101000000-000000000000
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2
)

require (
	github.com/agilira/argus v1.7.1 // indirect
	github.com/agilira/flash-flags v1.3.0 // indirect
	github.com/agilira/go-errors v1.1.2 // indirect
	github.com/agilira/go-timecache v1.0.3 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/mattn/go-sqlite3 v1.14.50 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_golang v1.24.1 // indirect
	github.com/prometheus/client_model v0.6.2 // indirect
	github.com/prometheus/common v0.70.1 // indirect
	github.com/prometheus/procfs v0.21.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af // indirect
	k8s.io/apimachinery v0.37.2 // indirect
)

// The SDK from this checkout. A module of your own requires a tagged version instead
// (go get github.com/hotreload/plugin-operator@vX.Y.Z) and has no replace.
replace github.com/hotreload/plugin-operator => ../..
