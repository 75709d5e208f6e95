package ipc

import "slices"

// One encoder (appendBody) and one decoder (decodeBody) per message type.
// The encoder writes the keys in the order of the struct's fields, omits
// the keys marked "omitted when zero" in PROTOCOL.md §4 when they are, and
// writes a nil slice as msgpack nil and an empty one as an empty array;
// the decoder reads them back to the same value. Every integer is read
// with its field's range (reader.u32 …), every nested map with its own
// decoder, every unknown key skipped.

func (m *Hello) appendBody(b []byte) []byte {
	n := 8
	if m.ReplayFromNS != 0 {
		n++
	}
	b = appendMapLen(b, n)
	b = appendKeyUint(b, "major", uint64(m.Major))
	b = appendKeyUint(b, "minor", uint64(m.Minor))
	b = appendKeyStr(b, "name", m.Name)
	b = appendKeyStr(b, "stream", m.Stream)
	b = appendKeyUint(b, "max_in_flight", uint64(m.MaxInFlight))
	b = appendKeyUint(b, "max_hold_ms", uint64(m.MaxHoldMS))
	b = appendKeyStr(b, "policy", string(m.Policy))
	b = appendKeyUint(b, "flags", uint64(m.Flags))
	if m.ReplayFromNS != 0 {
		b = appendKeyInt(b, "replay_from_ns", m.ReplayFromNS)
	}
	return b
}

func (m *Hello) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "major":
			m.Major = r.u16(k)
		case "minor":
			m.Minor = r.u16(k)
		case "name":
			m.Name = r.str(k)
		case "stream":
			m.Stream = r.str(k)
		case "max_in_flight":
			m.MaxInFlight = r.u32(k)
		case "max_hold_ms":
			m.MaxHoldMS = r.u32(k)
		case "policy":
			m.Policy = Policy(r.str(k))
		case "flags":
			m.Flags = r.u32(k)
		case "replay_from_ns":
			m.ReplayFromNS = r.i64(k)
		default:
			r.skip()
		}
	})
	return r.done()
}

func (m *Welcome) appendBody(b []byte) []byte {
	b = appendMapLen(b, 10)
	b = appendKeyUint(b, "major", uint64(m.Major))
	b = appendKeyUint(b, "minor", uint64(m.Minor))
	b = appendKeyUint(b, "session", m.Session)
	b = appendKeyStr(b, "stream", m.Stream)
	b = appendKeyUint(b, "max_in_flight", uint64(m.MaxInFlight))
	b = appendKeyUint(b, "max_hold_ms", uint64(m.MaxHoldMS))
	b = appendKeyStr(b, "policy", string(m.Policy))
	b = appendKeyUint(b, "flags", uint64(m.Flags))
	b = m.Caps.appendBody(appendStr(b, "caps"))
	return m.Pool.appendBody(appendStr(b, "pool"))
}

func (m *Welcome) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "major":
			m.Major = r.u16(k)
		case "minor":
			m.Minor = r.u16(k)
		case "session":
			m.Session = r.u64(k)
		case "stream":
			m.Stream = r.str(k)
		case "max_in_flight":
			m.MaxInFlight = r.u32(k)
		case "max_hold_ms":
			m.MaxHoldMS = r.u32(k)
		case "policy":
			m.Policy = Policy(r.str(k))
		case "flags":
			m.Flags = r.u32(k)
		case "caps":
			m.Caps.decodeMap(&r, k)
		case "pool":
			m.Pool.decodeMap(&r, k)
		default:
			r.skip()
		}
	})
	return r.done()
}

func (m *Caps) appendBody(b []byte) []byte {
	n := 5
	if len(m.Planes) > 0 {
		n++
	}
	if m.Codec != "" {
		n++
	}
	b = appendMapLen(b, n)
	b = appendKeyStr(b, "format", m.Format)
	b = appendKeyUint(b, "width", uint64(m.Width))
	b = appendKeyUint(b, "height", uint64(m.Height))
	b = appendKeyUint(b, "fps_n", uint64(m.FPSNum))
	b = appendKeyUint(b, "fps_d", uint64(m.FPSDen))
	if len(m.Planes) > 0 {
		b = appendPlanes(b, m.Planes)
	}
	if m.Codec != "" {
		b = appendKeyStr(b, "codec", m.Codec)
	}
	return b
}

func (m *Caps) decodeBody(b []byte) error {
	r := reader{b: b}
	m.decodeMap(&r, nil)
	return r.done()
}

// decodeMap reads caps from the map of field key (nil: the body).
func (m *Caps) decodeMap(r *reader, key []byte) {
	r.fields(key, func(k []byte) {
		switch string(k) {
		case "format":
			m.Format = r.str(k)
		case "width":
			m.Width = r.u32(k)
		case "height":
			m.Height = r.u32(k)
		case "fps_n":
			m.FPSNum = r.u32(k)
		case "fps_d":
			m.FPSDen = r.u32(k)
		case "planes":
			m.Planes = array(r, k, MaxPlanes, r.plane)
		case "codec":
			m.Codec = r.str(k)
		default:
			r.skip()
		}
	})
}

func appendPlanes(b []byte, planes []Plane) []byte {
	b = appendArrayLen(appendStr(b, "planes"), len(planes))
	for _, p := range planes {
		b = append(b, 0x84)
		b = appendKeyUint(b, "offset", uint64(p.Offset))
		b = appendKeyUint(b, "stride", uint64(p.Stride))
		b = appendKeyUint(b, "size", uint64(p.Size))
		b = appendKeyUint(b, "fd", uint64(p.FD))
	}
	return b
}

// plane reads one element of a planes array.
func (r *reader) plane(p *Plane) {
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "offset":
			p.Offset = r.u32(k)
		case "stride":
			p.Stride = r.u32(k)
		case "size":
			p.Size = r.u32(k)
		case "fd":
			p.FD = r.u8(k)
		default:
			r.skip()
		}
	})
}

func (m *Pool) appendBody(b []byte) []byte {
	b = append(b, 0x84)
	b = appendKeyUint(b, "min", uint64(m.Min))
	b = appendKeyUint(b, "max", uint64(m.Max))
	b = appendKeyUint(b, "surface_size", m.SurfaceSize)
	return appendKeyUint(b, "kind", uint64(m.Kind))
}

func (m *Pool) decodeMap(r *reader, key []byte) {
	r.fields(key, func(k []byte) {
		switch string(k) {
		case "min":
			m.Min = r.u32(k)
		case "max":
			m.Max = r.u32(k)
		case "surface_size":
			m.SurfaceSize = r.u64(k)
		case "kind":
			m.Kind = Kind(r.u8(k))
		default:
			r.skip()
		}
	})
}

// Reject and Bye carry the same keys.

func (m *Reject) appendBody(b []byte) []byte { return appendCodeReason(b, m.Code, m.Reason) }
func (m *Reject) decodeBody(b []byte) error  { return decodeCodeReason(b, &m.Code, &m.Reason) }
func (m *Bye) appendBody(b []byte) []byte    { return appendCodeReason(b, m.Code, m.Reason) }
func (m *Bye) decodeBody(b []byte) error     { return decodeCodeReason(b, &m.Code, &m.Reason) }

func appendCodeReason(b []byte, code Code, reason string) []byte {
	return appendKeyStr(appendKeyUint(append(b, 0x82), "code", uint64(code)), "reason", reason)
}

func decodeCodeReason(b []byte, code *Code, reason *string) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "code":
			*code = Code(r.u16(k))
		case "reason":
			*reason = r.str(k)
		default:
			r.skip()
		}
	})
	return r.done()
}

func (m *Announce) appendBody(b []byte) []byte {
	b = appendStr(append(b, 0x81), "surfaces")
	if m.Surfaces == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(m.Surfaces))
	for i := range m.Surfaces {
		s := &m.Surfaces[i]
		n := 5
		if s.Device != nil {
			n++
		}
		b = appendMapLen(b, n)
		b = appendKeyUint(b, "id", uint64(s.ID))
		b = appendKeyUint(b, "gen", uint64(s.Gen))
		b = appendKeyUint(b, "size", s.Size)
		b = appendKeyUint(b, "kind", uint64(s.Kind))
		b = appendKeyUint(b, "nfds", uint64(s.NFDs))
		if d := s.Device; d != nil {
			n := 1
			if d.NoCPUMap {
				n++
			}
			b = appendMapLen(appendStr(b, "device"), n)
			b = appendBin(appendStr(b, "uuid"), d.UUID)
			if d.NoCPUMap {
				b = appendBool(appendStr(b, "no_cpu_map"), true)
			}
		}
	}
	return b
}

func (m *Announce) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		if string(k) != "surfaces" {
			r.skip()
			return
		}
		m.Surfaces = array(&r, k, 0, r.surface)
	})
	return r.done()
}

// surface reads one element of Announce.surfaces.
func (r *reader) surface(s *Surface) {
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "id":
			s.ID = r.u32(k)
		case "gen":
			s.Gen = r.u32(k)
		case "size":
			s.Size = r.u64(k)
		case "kind":
			s.Kind = Kind(r.u8(k))
		case "nfds":
			s.NFDs = r.u8(k)
		case "device":
			s.Device = nil
			if !r.isNil() {
				s.Device = &Device{}
				r.device(k, s.Device)
			}
		default:
			r.skip()
		}
	})
}

func (r *reader) device(key []byte, d *Device) {
	r.fields(key, func(k []byte) {
		switch string(k) {
		case "uuid":
			d.UUID = r.bin(k)
		case "no_cpu_map":
			d.NoCPUMap = r.bool(k)
		default:
			r.skip()
		}
	})
}

func (m *Frame) appendBody(b []byte) []byte {
	n := 12 // lease … real_ns and flags are always written
	if m.Dropped != 0 {
		n++
	}
	if len(m.Planes) > 0 {
		n++
	}
	if len(m.Meta) > 0 {
		n++
	}
	b = append(b, 0x80|byte(n))
	b = appendKeyUint(b, "lease", m.Lease)
	b = appendKeyUint(b, "surface", uint64(m.Surface))
	b = appendKeyUint(b, "gen", uint64(m.Gen))
	b = appendKeyUint(b, "seq", m.Seq)
	b = appendKeyUint(b, "offset", uint64(m.Offset))
	b = appendKeyUint(b, "size", uint64(m.Size))
	b = appendKeyInt(b, "pts", m.PTS)
	b = appendKeyInt(b, "dts", m.DTS)
	b = appendKeyInt(b, "dur", m.Dur)
	b = appendKeyInt(b, "mono_ns", m.MonoNS)
	b = appendKeyInt(b, "real_ns", m.RealNS)
	b = appendKeyUint(b, "flags", uint64(m.Flags))
	if m.Dropped != 0 {
		b = appendKeyUint(b, "dropped", uint64(m.Dropped))
	}
	if len(m.Planes) > 0 {
		b = appendPlanes(b, m.Planes)
	}
	if len(m.Meta) > 0 {
		// Sorted, so that equal frames encode to equal bytes.
		keys := make([]string, 0, len(m.Meta))
		for k := range m.Meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendMapLen(appendStr(b, "meta"), len(m.Meta))
		for _, k := range keys {
			b = appendBin(appendStr(b, k), m.Meta[k])
		}
	}
	return b
}

func (m *Frame) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "lease":
			m.Lease = r.u64(k)
		case "surface":
			m.Surface = r.u32(k)
		case "gen":
			m.Gen = r.u32(k)
		case "seq":
			m.Seq = r.u64(k)
		case "offset":
			m.Offset = r.u32(k)
		case "size":
			m.Size = r.u32(k)
		case "pts":
			m.PTS = r.i64(k)
		case "dts":
			m.DTS = r.i64(k)
		case "dur":
			m.Dur = r.i64(k)
		case "mono_ns":
			m.MonoNS = r.i64(k)
		case "real_ns":
			m.RealNS = r.i64(k)
		case "flags":
			m.Flags = r.u32(k)
		case "dropped":
			m.Dropped = r.u32(k)
		case "planes":
			m.Planes = array(&r, k, MaxPlanes, r.plane)
		case "meta":
			m.Meta = r.meta(k)
		default:
			r.skip()
		}
	})
	return r.done()
}

// meta reads Frame.meta: a map of byte strings by string key.
func (r *reader) meta(key []byte) map[string][]byte {
	if r.isNil() {
		return nil
	}
	n := r.mapLen(key)
	defer r.end()
	if r.err != nil {
		return nil
	}
	m := make(map[string][]byte, n)
	for range n {
		k := r.key()
		v := r.bin(k)
		if r.err != nil {
			r.prefix(string(key))
			return nil
		}
		m[string(k)] = v
	}
	return m
}

func (m *Forget) appendBody(b []byte) []byte {
	b = appendStr(append(b, 0x81), "ids")
	if m.IDs == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(m.IDs))
	for _, id := range m.IDs {
		b = appendUint(b, uint64(id))
	}
	return b
}

func (m *Forget) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		if string(k) != "ids" {
			r.skip()
			return
		}
		m.IDs = array(&r, k, 0, func(id *uint32) { *id = r.u32(nil) })
	})
	return r.done()
}

func (m *EOS) appendBody(b []byte) []byte { return appendKeyStr(append(b, 0x81), "reason", m.Reason) }

func (m *EOS) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		if string(k) != "reason" {
			r.skip()
			return
		}
		m.Reason = r.str(k)
	})
	return r.done()
}

func (m *Release) appendBody(b []byte) []byte {
	b = appendStr(append(b, 0x81), "leases")
	if m.Leases == nil {
		return append(b, 0xc0)
	}
	return appendUints(appendArrayLen(b, len(m.Leases)), m.Leases)
}

func (m *Release) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		if string(k) != "leases" {
			r.skip()
			return
		}
		m.Leases = array(&r, k, 0, func(l *uint64) { *l = r.u64(nil) })
	})
	return r.done()
}

func (m *RequestKeyframe) appendBody(b []byte) []byte { return append(b, 0x80) }
func (m *RequestKeyframe) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func([]byte) { r.skip() })
	return r.done()
}

// Ping and Pong carry the same keys.

func (m *Ping) appendBody(b []byte) []byte { return appendTokenTime(b, m.Token, m.MonoNS) }
func (m *Ping) decodeBody(b []byte) error  { return decodeTokenTime(b, &m.Token, &m.MonoNS) }
func (m *Pong) appendBody(b []byte) []byte { return appendTokenTime(b, m.Token, m.MonoNS) }
func (m *Pong) decodeBody(b []byte) error  { return decodeTokenTime(b, &m.Token, &m.MonoNS) }

func appendTokenTime(b []byte, token uint64, monoNS int64) []byte {
	return appendKeyInt(appendKeyUint(append(b, 0x82), "token", token), "mono_ns", monoNS)
}

func decodeTokenTime(b []byte, token *uint64, monoNS *int64) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		switch string(k) {
		case "token":
			*token = r.u64(k)
		case "mono_ns":
			*monoNS = r.i64(k)
		default:
			r.skip()
		}
	})
	return r.done()
}

func (m *Ring) appendBody(b []byte) []byte {
	return appendKeyUint(append(b, 0x81), "size", uint64(m.Size))
}

func (m *Ring) decodeBody(b []byte) error {
	r := reader{b: b}
	r.fields(nil, func(k []byte) {
		if string(k) != "size" {
			r.skip()
			return
		}
		m.Size = r.u32(k)
	})
	return r.done()
}

// Unknown is never encoded (Codec.Append refuses it) nor decoded (Decode
// does not read the body of an unknown type).

func (*Unknown) appendBody(b []byte) []byte { return b }
func (*Unknown) decodeBody([]byte) error    { return nil }
