// Package stamp writes and verifies the frame stamp: a small, self-checking
// block of bytes in the top rows of an NV12 frame's Y plane that lets a
// consumer prove that the pixels it has mapped belong to the frame its
// metadata names (by sequence number), and detect a surface that was reused,
// overwritten or torn while it was being read.
//
// framehub's test sources stamp every frame (the producer's -source
// synthetic and gpu, and the test pattern of the benchmarks); a camera's
// frames carry none. A consumer checks a frame with Verify:
//
//	y, _ := f.Plane(0)
//	info, err := stamp.Verify(y, f.Planes()[0].Stride, c.Caps().Width, f.Seq())
//	switch {
//	case errors.Is(err, stamp.ErrNoStamp): // not a stamped stream
//	case err != nil: // the pixels are not frame f.Seq()'s: reused or torn
//	}
//
// The package is part of the SDK's stable API. Like package sdk it needs no
// cgo.
//
// This comment is the normative specification (format version 1). It is
// meant to be implemented independently, for example in Python or C.
//
// # Terms
//
// The stamp lives in the Y (luma) plane of a frame. The plane is addressed as
// bytes: row r starts at byte offset r*stride from the start of the plane,
// and row r, byte j is at offset r*stride + j. W is the frame width in pixels
// (= bytes per Y row that carry pixels); stride is the distance in bytes
// between the starts of consecutive rows (stride >= W).
//
//   - W must be at least 64 (MinWidth). Narrower frames cannot carry a stamp.
//   - Region width RW = min(W, 256) (MaxRegionWidth).
//   - The stamp region is bytes 0..RW-1 of rows 0..7 of the Y plane
//     (Rows = 8). Nothing outside the region is read or written; in
//     particular bytes RW..W-1 of rows 0..7 and any stride padding belong to
//     the picture.
//   - seq is an unsigned 64-bit frame sequence number; mono_ns is a signed
//     64-bit capture timestamp in nanoseconds on the producer's monotonic
//     clock. Both are whatever the producer's frame metadata says; mono_ns
//     is carried and checksummed but not interpreted.
//   - All multi-byte integers are little-endian.
//
// # Row 0: header (bytes 0..31)
//
//	offset size field     value
//	0      4    magic     the ASCII bytes "FHST" (0x46 0x48 0x53 0x54)
//	4      2    version   u16 = 1
//	6      2    width     u16 = RW (the region width, not W)
//	8      2    rows      u16 = 8
//	10     2    reserved  u16; writers write 0, readers ignore (it is checksummed)
//	12     8    seq       u64
//	20     8    mono_ns   i64 (two's complement)
//	28     4    crc       u32, see "Checksum"
//
// # Row 0: tail (bytes 32..RW-1)
//
// Byte j (32 <= j < RW) of row 0 is (seq XOR j) AND 0xFF, i.e. the low byte
// of seq XOR j.
//
// # Rows 1..7: pattern
//
// Byte j (0 <= j < RW) of row r (1 <= r <= 7) is (seq*31 + r*7 + j) mod 256.
// Only the low 8 bits of seq matter here, so the arithmetic may be done in
// any integer width (Python: (seq*31 + r*7 + j) & 0xFF).
//
// The tail and pattern bytes change with every frame, so a region that is
// partly from one frame and partly from another fails the checksum. They are
// not checked individually: the checksum binds them to the header.
//
// # Checksum
//
// crc is CRC-32C (Castagnoli; the iSCSI CRC: reflected polynomial
// 0x82F63B78, initial value 0xFFFFFFFF, reflected input and output, final
// XOR 0xFFFFFFFF; CRC-32C("123456789") = 0xE3069283) computed over the
// concatenation, in this order, of:
//
//  1. row 0, bytes 0..27 (the header without the crc field);
//  2. row 0, bytes 32..RW-1 (the tail, RW-32 bytes);
//  3. rows 1, 2, ..., 7, bytes 0..RW-1 of each (RW bytes per row).
//
// That is 28 + (RW-32) + 7*RW bytes in total (2044 bytes when RW = 256).
// Stride padding is never included.
//
// # Reading
//
// A reader that knows W and stride verifies a stamp in this order, and
// reports the first failure:
//
//  1. magic != "FHST", version != 1, width != RW or rows != 8:
//     there is no (usable) stamp (ErrNoStamp). A zeroed or invalidated
//     region, or a non-stamped surface, fails here.
//  2. CRC-32C of the bytes listed under "Checksum" != crc: the region is
//     corrupt or torn (ErrChecksum).
//  3. Otherwise the stamp is valid and identifies frame seq captured at
//     mono_ns. A consumer that expects frame S and finds seq != S holds a
//     surface that has been reused for another frame (ErrSeq).
//
// A single-byte change anywhere in the region is therefore always detected:
// in bytes 0..9 of row 0 (magic, version, width, rows) as ErrNoStamp,
// anywhere else, including the reserved and crc fields, as ErrChecksum (a
// CRC-32 detects every error confined to 32 consecutive bits).
//
// # Writing and invalidation (producer rules)
//
// A producer that overwrites a surface in place must:
//
//  1. invalidate the stamp first: set row 0 bytes 0..31 to zero (Invalidate);
//  2. write the picture (it may skip the stamp region);
//  3. write the stamp last (Write). Write stores the magic after every other
//     region byte, so the header never shows the magic before the rest of
//     the stamp is in place.
//
// With that order a consumer that verifies the stamp both before and after
// reading the pixels (a seqlock-style check) knows the pixels were not
// being replaced while it read them: any rewrite that started before the
// second check has already destroyed the old stamp. This relies on stores
// becoming visible in program order (true on x86-64); on weakly ordered
// CPUs the frame hand-off between processes must provide the ordering.
//
// # Reference reader (Python 3, informative)
//
//	import struct
//
//	def crc32c(data, crc=0):
//	    crc ^= 0xFFFFFFFF
//	    for b in data:
//	        crc ^= b
//	        for _ in range(8):
//	            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
//	    return crc ^ 0xFFFFFFFF
//
//	def read_stamp(y, stride, width):  # y: bytes-like Y plane
//	    rw = min(width, 256)
//	    row = lambda r: bytes(y[r * stride : r * stride + rw])
//	    magic, ver, w, rows, _res, seq, mono, crc = struct.unpack_from(
//	        "<4sHHHHQqI", row(0))
//	    if magic != b"FHST" or ver != 1 or w != rw or rows != 8:
//	        raise ValueError("no stamp")
//	    data = row(0)[:28] + row(0)[32:] + b"".join(row(r) for r in range(1, 8))
//	    if crc32c(data) != crc:
//	        raise ValueError("stamp checksum mismatch")
//	    return seq, mono
package stamp
