// Package plugin holds the multi-process tests of framehub's third-party
// consumers: go-plugin consumers launched and supervised by the plugin host
// (sdk/plugin/host) against a producer running in the test process, and the
// Python consumer of examples/consumer-python speaking the wire protocol on
// its own. The plugin binaries are built by TestMain.
//
// The package has no non-test code besides this file and the test plugin
// in testplugin/.
package plugin
