package config

import (
	"bytes"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxSyntaxLines bounds the files whose syntax errors syntaxLine places:
// it parses every prefix of the file, which is quadratic.
const maxSyntaxLines = 5000

// syntaxLine returns the line a YAML syntax error is on, or 0 when it
// cannot tell. The yaml package reports the line where the enclosing
// block starts (one before it, even), so a badly indented key on line 4 of
// a list that starts on line 2 is "line 1" or "line 2"; the first prefix of
// the file, in whole lines, that fails with the same problem ends on the
// line that has it.
func syntaxLine(data []byte, problem string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxSyntaxLines {
		return 0
	}
	end := 0
	for i, l := range lines {
		end += len(l)
		var n yaml.Node
		err := yaml.Unmarshal(data[:end], &n)
		if err == nil {
			continue
		}
		if yamlError("", nil, err).Err.Error() == problem {
			return i + 1
		}
	}
	return 0
}

// parentPath returns the key path, split at its dots, of the mapping that
// holds key, the key on line of root; nil for the top level or when it is
// not found.
func parentPath(root *yaml.Node, line int, key string) []string {
	if root == nil || len(root.Content) == 0 || line <= 0 {
		return nil
	}
	p := keyAt(root.Content[0], "", line)
	parts := strings.Split(p, ".")
	if p == "" || parts[len(parts)-1] != key {
		return nil
	}
	return parts[:len(parts)-1]
}

// knownKeys returns the YAML keys of the struct that t (the type decoded
// into) holds at path: through pointers, list items (numeric parts), map
// values and struct fields named by their yaml tags, inline fields
// included. It returns nil when path leads to no struct.
func knownKeys(t reflect.Type, path []string) []string {
	for _, part := range path {
		t = deref(t)
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := field(t, part)
			if !ok {
				return nil
			}
			t = f
		default:
			return nil
		}
	}
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	eachKey(t, func(name string, _ reflect.Type) bool {
		keys = append(keys, name)
		return true
	})
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// field returns the type of the field of struct t whose YAML key is name.
func field(t reflect.Type, name string) (reflect.Type, bool) {
	var found reflect.Type
	eachKey(t, func(k string, ft reflect.Type) bool {
		if k == name {
			found = ft
			return false
		}
		return true
	})
	return found, found != nil
}

// eachKey calls f with the YAML key and type of every field of struct t,
// as the yaml package names them (the tag's name, else the lower-cased
// field name; inline fields' own keys), until f returns false. It reports
// whether f never did.
func eachKey(t reflect.Type, f func(key string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || (!sf.IsExported() && !sf.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			if ft := deref(sf.Type); ft.Kind() == reflect.Struct && !eachKey(ft, f) {
				return false
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if !f(name, sf.Type) {
			return false
		}
	}
	return true
}

// nearest returns the key of known that key was most likely meant to be:
// the same but for case, '-' and '_', else the closest within an edit
// distance of a third of its length (at least 1, at most 3); "" when none
// is close.
func nearest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	}
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
	}
	best, bestD := "", min(3, max(1, len(key)/3))+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the number of single-byte insertions, deletions,
// substitutions and swaps of neighbours that turn a into b.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
