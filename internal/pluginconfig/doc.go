// Package pluginconfig owns the config.json schema shared by the operator and the plugin
// host: the Go types of the seed format, strict decoding with errors that name the JSON path,
// defaults, validation, canonical encoding and the revision (sha256 of the bytes).
//
// The operator renders exactly the bytes the host parses, with this code, so a config that
// the operator accepts is a config the host accepts.
package pluginconfig
