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
