package producer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLabelBytes bounds a metric label value that a peer chose.
const maxLabelBytes = 64

// peerLabel makes a Prometheus label value of a string a peer chose, such
// as a consumer's name: valid UTF-8 (the client library refuses anything
// else, and one bad value made every scrape fail with 500), printable
// (invalid bytes and unprintable runes become U+FFFD), and at most
// maxLabelBytes bytes (a longer one is cut at a rune boundary and ends in
// "…"), so that /metrics stays bounded whatever peers send. Names that
// follow the Hello rules (printable UTF-8, ≤ 64 bytes) come out unchanged.
func peerLabel(s string) string {
	if len(s) <= maxLabelBytes && printable(s) {
		return s
	}
	const ellipsis = "…"
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > maxLabelBytes {
			// Too long: keep what fits before the ellipsis.
			out := b.String()
			for len(out) > maxLabelBytes-len(ellipsis) {
				_, n := utf8.DecodeLastRuneInString(out)
				out = out[:len(out)-n]
			}
			return out + ellipsis
		}
		b.WriteRune(r)
	}
	return b.String()
}

// printable reports whether s is valid UTF-8 of printable runes only.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
