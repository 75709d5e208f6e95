//go:build !jetson

package media

// adoptNVMM is false without the jetson build tag: NVMM is converted into
// system memory by nvvidconv (see nvmm_jetson.go).
const adoptNVMM = false
