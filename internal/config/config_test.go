package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type proc struct {
	Name   string        `yaml:"name"`
	Binary string        `yaml:"binary"`
	Grace  time.Duration `yaml:"grace"`
}

type doc struct {
	Admin     string `yaml:"admin"`
	Processes []proc `yaml:"processes"`
}

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func TestLoad(t *testing.T) {
	const file = "admin: :7700\nprocesses:\n  - name: producer\n    binary: /bin/true\n    grace: 2s\n  - name: rec\n    binary: \"\"\n"
	var d doc
	err := Load(write(t, file), &d, func() error {
		for i, p := range d.Processes {
			if p.Binary == "" {
				return Invalid("processes."+itoa(i)+".binary", "must not be empty")
			}
		}
		return nil
	})
	var ce *Error
	require.True(t, errors.As(err, &ce), "err = %v", err)
	require.Equal(t, 7, ce.Line)
	require.Equal(t, "processes.1.binary", ce.Field)
	require.Equal(t, 2*time.Second, d.Processes[0].Grace)
	require.Contains(t, err.Error(), "c.yaml:7: processes.1.binary: must not be empty")

	err = Load(write(t, "admin: x\nprocesses:\n  - name: a\n    binry: b\n"), &d, nil)
	require.True(t, errors.As(err, &ce))
	require.Equal(t, 4, ce.Line)
	require.Equal(t, "binry", ce.Field)

	err = Load(write(t, "processes:\n  - name: a\n    grace: soon\n"), &d, nil)
	require.True(t, errors.As(err, &ce))
	require.Equal(t, 3, ce.Line)
	require.Equal(t, "processes.0.grace", ce.Field, "a wrong type names its key")

	err = Load(filepath.Join(t.TempDir(), "missing.yaml"), &d, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func itoa(i int) string { return string(rune('0' + i)) }

// A syntax error is reported on the line that has it, not where the
// enclosing block starts (the yaml package says line 1 for the first, 2
// for the second).
func TestSyntaxErrorLine(t *testing.T) {
	for _, c := range []struct {
		file string
		line int
		msg  string
	}{
		{"processes:\n  - name: a\n    binary: b\n   grace: 1s\n", 4, "did not find expected '-' indicator"},
		{"admin: x\nprocesses:\n  - name: a\n   binary: b\n", 4, "did not find expected '-' indicator"},
		{"admin: x\nprocesses:\n  - name: a\n      binary: b\n", 4, "mapping values are not allowed in this context"},
		{"admin: x\nprocesses:\n  - name: a\n    binary: b\n  grace: [1s]\n", 5, "did not find expected '-' indicator"},
		{"admin: x\nprocesses:\n  - name: a\n\tbinary: b\n", 4, "found a tab character that violates indentation"},
		{"admin: x\nprocesses:\n  - name: a\n    binary: [b,\n      c\n", 5, "did not find expected ',' or ']'"},
	} {
		var d doc
		err := Load(write(t, c.file), &d, nil)
		var ce *Error
		require.True(t, errors.As(err, &ce), "%q: err = %v", c.file, err)
		require.Equal(t, c.line, ce.Line, "%q: %v", c.file, err)
		require.Equal(t, c.msg, ce.Err.Error(), "%q", c.file)
	}
}

type nested struct {
	Admin     string `yaml:"admin"`
	inline    `yaml:",inline"`
	Processes []struct {
		Name    string `yaml:"name"`
		Binary  string `yaml:"binary"`
		Restart struct {
			Policy     string        `yaml:"policy"`
			BackoffMin time.Duration `yaml:"backoff-min"`
		} `yaml:"restart"`
	} `yaml:"processes"`
}

type inline struct {
	TokenFile string `yaml:"admin-token"`
}

// An unknown key suggests the known key of its mapping that it is most
// likely a typo of, and nothing when none is close.
func TestUnknownKeySuggestion(t *testing.T) {
	for _, c := range []struct {
		file, key, want string
	}{
		{"admin: x\nprocesses:\n  - name: a\n    binry: b\n", "binry", `unknown key; did you mean "binary"?`},
		{"proceses: []\n", "proceses", `unknown key; did you mean "processes"?`},
		{"admin_token: /x\n", "admin_token", `unknown key; did you mean "admin-token"?`},
		{"processes:\n  - name: a\n    restart:\n      backoff_min: 1s\n", "backoff_min", `unknown key; did you mean "backoff-min"?`},
		{"processes:\n  - name: a\n    restart:\n      polcy: never\n", "polcy", `unknown key; did you mean "policy"?`},
		{"processes:\n  - name: a\n    restart:\n      name: x\n", "name", "unknown key"},
		{"colour: blue\n", "colour", "unknown key"},
	} {
		var d nested
		err := Load(write(t, c.file), &d, nil)
		var ce *Error
		require.True(t, errors.As(err, &ce), "%q: err = %v", c.file, err)
		require.Equal(t, c.key, ce.Field, "%q", c.file)
		require.Equal(t, c.want, ce.Err.Error(), "%q", c.file)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"binry", "binary", 1}, {"polciy", "policy", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		require.Equal(t, c.d, editDistance(c.a, c.b), "%q %q", c.a, c.b)
		require.Equal(t, c.d, editDistance(c.b, c.a), "%q %q", c.b, c.a)
	}
}
