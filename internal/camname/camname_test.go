package camname

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"cam", "front-door", "cam_2", "0", strings.Repeat("a", MaxLen)} {
		require.NoError(t, Check(ok), ok)
	}
	for name, want := range map[string]string{
		"":                      "must not be empty",
		strings.Repeat("a", 33): "is 33 bytes long: at most 32",
		"Front":                 `has 'F' at byte 0`,
		"back yard":             `has ' ' at byte 4`,
		"a/b":                   `has '/' at byte 1`,
		"caméra":                `has 'é' at byte 3`,
		"x.y":                   `has '.' at byte 1`,
		"%2e%2e":                `has '%' at byte 0`,
	} {
		err := Check(name)
		require.Error(t, err, "%q", name)
		require.Contains(t, err.Error(), want, "%q", name)
	}
}
