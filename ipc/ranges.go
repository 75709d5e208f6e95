package ipc

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// checkRanges compares every integer field of m, as the msgpack library
// decoded it, with the integer the body really carries: the library
// converts without a range check (2^33 into a uint32 field becomes 0, −1
// becomes 4294967295), and a peer's out-of-range value must be an error
// naming the field, not a different number. Frame and Release have
// hand-written decoders that check ranges themselves; the messages that
// come here are rare (handshake, announce, caps), so decoding the body a
// second time into generic values costs nothing that matters.
func checkRanges(body []byte, m Message) error {
	var generic any
	if err := msgpack.Unmarshal(body, &generic); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return checkValue(generic, reflect.ValueOf(m), "")
}

func checkValue(g any, v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return checkValue(g, v.Elem(), path)
	case reflect.Struct:
		fields, ok := g.(map[string]any)
		if !ok {
			return nil
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if fg, ok := fields[name]; ok {
				if err := checkValue(fg, v.Field(i), join(path, name)); err != nil {
					return err
				}
			}
		}
	case reflect.Slice, reflect.Array:
		elems, ok := g.([]any)
		if !ok {
			return nil
		}
		for i := range min(len(elems), v.Len()) {
			if err := checkValue(elems[i], v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, neg, ok := integer(g); ok && (neg && n != uint64(-v.Int()) || !neg && (v.Int() < 0 || uint64(v.Int()) != n)) {
			return outOfRange(path, g, v)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n, neg, ok := integer(g); ok && (neg || v.Uint() != n) {
			return outOfRange(path, g, v)
		}
	}
	return nil
}

// integer returns g's magnitude and sign when g is an integer.
func integer(g any) (n uint64, neg bool, ok bool) {
	var i int64
	switch x := g.(type) {
	case uint8:
		return uint64(x), false, true
	case uint16:
		return uint64(x), false, true
	case uint32:
		return uint64(x), false, true
	case uint64:
		return x, false, true
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	default:
		return 0, false, false
	}
	if i < 0 {
		return uint64(-i), true, true // -MinInt64 wraps to itself: its magnitude as uint64 is right
	}
	return uint64(i), false, true
}

func outOfRange(path string, g any, v reflect.Value) error {
	return fmt.Errorf("%w: %s = %v does not fit its type %s", ErrInvalid, path, g, v.Type())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
