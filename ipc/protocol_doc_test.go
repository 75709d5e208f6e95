package ipc_test

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/framehub/framehub/ipc"
)

// protocolDoc is the wire protocol's contract, whose §4 shows each message
// as the bytes ipc.Codec.Encode makes of it.
var protocolDoc = filepath.Join("..", "docs", "PROTOCOL.md")

// docExamples returns the values of the byte-exact examples in §4 of
// PROTOCOL.md, by the title each example starts with: the cases of
// casesMessages that have one.
func docExamples() map[string]ipc.Message {
	m := map[string]ipc.Message{}
	for _, tc := range casesMessages {
		if tc.doc != "" {
			m[tc.doc] = tc.msg
		}
	}
	return m
}

// docExample is one byte-exact example of the document.
type docExample struct {
	name  string // the title up to its " {"
	line  int    // of the title
	bytes int    // what the title says the encoding takes
	hex   string // the dump, bytes separated by spaces and newlines
}

// exampleTitle matches an example's title: `Frame {lease 5, …}, 113 bytes:`,
// optionally followed by the dump in backticks on the same line.
var exampleTitle = regexp.MustCompile("^([A-Z][A-Za-z0-9 .]*?) \\{.*\\}(?: \\(\\+ \\d+ fds\\))?, (\\d+) bytes?:(?: `([0-9a-f ]+)`)?$")

// readDocExamples reads the examples of §4 of the document at path: each
// title with its dump, on the title's line, on the next line in backticks,
// or in the fenced block that follows.
func readDocExamples(t *testing.T, path string) []docExample {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var out []docExample
	in4 := false
	for i := 0; i < len(lines); i++ {
		switch {
		case strings.HasPrefix(lines[i], "## 4."):
			in4 = true
			continue
		case strings.HasPrefix(lines[i], "## ") && in4:
			return out
		}
		m := exampleTitle.FindStringSubmatch(lines[i])
		if !in4 || m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		ex := docExample{name: m[1], line: i + 1, bytes: n, hex: m[3]}
		if ex.hex == "" {
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
				j++
			}
			require.Less(t, j, len(lines), "%s:%d: no dump after the title", path, i+1)
			if lines[j] == "```" {
				for j++; j < len(lines) && lines[j] != "```"; j++ {
					ex.hex += lines[j] + " "
				}
			} else {
				ex.hex = strings.Trim(lines[j], "`")
			}
			i = j
		}
		out = append(out, ex)
	}
	require.True(t, in4, "%s has no section 4", path)
	return out
}

// Every byte-exact example of PROTOCOL.md §4 is what the codec encodes for
// the values its title shows (the case of casesMessages with that doc
// title), of the length the title says, and decodes back to those values;
// the document and the table name the same examples, so an example added,
// changed or removed on either side fails here.
func TestProtocolDocExamples(t *testing.T) {
	exs := readDocExamples(t, protocolDoc)
	docExamples := docExamples()
	seen := map[string]bool{}
	codec := ipc.NewCodec()
	for _, ex := range exs {
		t.Run(ex.name, func(t *testing.T) {
			require.False(t, seen[ex.name], "PROTOCOL.md:%d: a second example titled %q", ex.line, ex.name)
			seen[ex.name] = true
			want, ok := docExamples[ex.name]
			require.True(t, ok, "PROTOCOL.md:%d: example %q is the doc title of no case in casesMessages", ex.line, ex.name)
			doc, err := hex.DecodeString(strings.Join(strings.Fields(ex.hex), ""))
			require.NoError(t, err, "PROTOCOL.md:%d: the dump is not hex", ex.line)
			require.Len(t, doc, ex.bytes, "PROTOCOL.md:%d: the title's byte count against its dump", ex.line)

			got, err := codec.Encode(want)
			require.NoError(t, err)
			require.Equal(t, hexDump(doc), hexDump(got), "PROTOCOL.md:%d: %s as the codec encodes it", ex.line, ex.name)
			back, err := codec.Decode(doc)
			require.NoError(t, err)
			require.Equal(t, want, back, "PROTOCOL.md:%d: the dump decodes to the title's values", ex.line)
		})
	}
	for name := range docExamples {
		require.True(t, seen[name], "casesMessages has the doc title %q, which PROTOCOL.md §4 does not show", name)
	}
}

// hexDump formats b as PROTOCOL.md does, 24 bytes a line, so that a
// mismatch shows where it is.
func hexDump(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		switch {
		case i == 0:
		case i%24 == 0:
			sb.WriteByte('\n')
		default:
			sb.WriteByte(' ')
		}
		sb.WriteString(hex.EncodeToString([]byte{c}))
	}
	return sb.String()
}
