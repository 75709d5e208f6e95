package config_test

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/internal/config"
	"github.com/framehub/framehub/internal/config/configtest"
)

// list is a config.ListValue, like the producer's -allow-uid.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, strings.Split(v, ",")...); return nil }
func (l *list) Reset()             { *l = nil }

type settings struct {
	Name  string          `yaml:"name"`
	Count int             `yaml:"count"`
	Wait  time.Duration   `yaml:"wait"`
	Size  config.ByteSize `yaml:"size"`
	Tags  list            `yaml:"tag"`
}

func (s *settings) Load(fs *flag.FlagSet, args []string) error {
	fs.StringVar(&s.Name, "name", "cam", "")
	fs.IntVar(&s.Count, "count", 4, "")
	fs.DurationVar(&s.Wait, "wait", time.Second, "")
	s.Size = 1 << 20
	fs.Var(&s.Size, "size", "")
	fs.Var(&s.Tags, "tag", "")
	return config.ParseFlags(fs, args, s, config.NoArgs, func() error {
		switch {
		case s.Count < 1:
			return config.Invalid("count", "%d must be ≥ 1", s.Count)
		case s.Wait > time.Duration(s.Count)*time.Second:
			return config.Invalid("wait", "%v must be ≤ count seconds", s.Wait)
		}
		return nil
	})
}

func TestParseFlags(t *testing.T) {
	s, err := configtest.Load[settings](t, "c.yaml", "")
	require.NoError(t, err)
	require.Equal(t, settings{Name: "cam", Count: 4, Wait: time.Second, Size: 1 << 20}, s)

	s, err = configtest.Load[settings](t, "c.yaml", "# c\nname: front\ncount: 8\nsize: 2GiB\ntag: [a, b]\n", "-count", "6", "-tag", "c", "-tag", "d")
	require.NoError(t, err)
	require.Equal(t, "front", s.Name)
	require.Equal(t, time.Second, s.Wait, "keys absent from the file keep the flag defaults")
	require.Equal(t, config.ByteSize(2<<30), s.Size)
	require.Equal(t, 6, s.Count, "a flag wins over the file")
	require.Equal(t, list{"c", "d"}, s.Tags, "a list flag replaces the file's list")

	s, err = configtest.Load[settings](t, "c.yaml", "count: 0\n", "-count", "2")
	require.NoError(t, err, "a flag corrects an invalid value of the file")
	require.Equal(t, 2, s.Count)

	_, err = configtest.Load[settings](t, "c.yaml", "", "stray")
	require.EqualError(t, err, `unexpected argument "stray" (all settings are flags)`)
	_, err = configtest.Load[settings](t, "c.yaml", "", "-config", "/nonexistent/c.yaml")
	require.ErrorContains(t, err, "/nonexistent/c.yaml")
}

func TestParseFlagsErrors(t *testing.T) {
	for _, c := range []struct {
		name, file string
		args       []string
		line       int    // 0: the error is not an *Error
		field, msg string // the *Error's, or the error text's
	}{
		{"invalid in file", "name: x\ncount: 0\n", nil, 2, "count", "0 must be ≥ 1"},
		{"invalid flag", "name: x\n", []string{"-count", "0"}, 0, "", "-count: 0 must be ≥ 1"},
		{"flag makes file invalid", "wait: 3s\n", []string{"-count", "2"}, 1, "wait", "3s must be ≤ count seconds"},
		{"unknown key", "name: x\nnmae: y\n", nil, 2, "nmae", "unknown key"},
		{"config key", "config: other.yaml\n", nil, 1, "config", "unknown key (the keys are the flag names; see --help)"},
		{"misspelt key", "name: x\ncuont: 3\n", nil, 2, "cuont", `unknown key; did you mean "count"? (the keys are the flag names; see --help)`},
		{"wrong type", "name: x\n\ncount: many\n", nil, 3, "count", "cannot unmarshal !!str `many` into int"},
		{"bad duration", "wait: soon\n", nil, 1, "wait", "cannot unmarshal !!str `soon`"},
		{"bad size", "size: lots\n", nil, 1, "size", `invalid value "lots": "lots" is not a size in bytes`},
		{"list for a value", "name:\n  - a\n  - b\n", nil, 2, "name", "cannot unmarshal !!seq into string"},
		{"twice", "count: 4\ncount: 5\n", nil, 2, "count", `mapping key "count" already defined at line 1`},
		{"syntax", "name: x\n  count: [\n", nil, 2, "", "mapping values are not allowed"},
		{"not a mapping", "- name\n", nil, 1, "", "cannot unmarshal !!seq"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := configtest.Load[settings](t, "c.yaml", c.file, c.args...)
			require.Error(t, err)
			var ce *config.Error
			if c.line == 0 {
				require.False(t, errors.As(err, &ce), "err = %v", err)
				require.EqualError(t, err, c.msg)
				return
			}
			require.True(t, errors.As(err, &ce), "err = %v", err)
			require.Equal(t, c.line, ce.Line, "err = %v", err)
			require.Equal(t, c.field, ce.Field, "err = %v", err)
			require.Contains(t, ce.Err.Error(), c.msg)
			want := fmt.Sprintf("c.yaml:%d: ", c.line)
			if c.field != "" {
				want += c.field + ": "
			}
			require.Contains(t, err.Error(), want+c.msg)
		})
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1500": 1500, "2K": 2000, "3MiB": 3 << 20, "1 GiB": 1 << 30, "5G": 5e9, "7B": 7, "1TiB": 1 << 40} {
		var b config.ByteSize
		require.NoError(t, b.Set(in), in)
		require.Equal(t, want, int64(b), in)
		require.Equal(t, fmt.Sprint(want), b.String())
	}
	for _, in := range []string{"", "-1", "1.5G", "G", "1TB", "lots"} {
		var b config.ByteSize
		require.ErrorContains(t, b.Set(in), "is not a size in bytes", in)
	}
}
