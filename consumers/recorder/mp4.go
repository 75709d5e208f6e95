package recorder

import (
	"encoding/binary"
	"time"
)

// The fragmented MP4 (ISO/IEC 14496-12) written here, one H.264 track:
//
//	ftyp
//	moov  mvhd trak(tkhd mdia(mdhd hdlr minf(vmhd dinf stbl(stsd(avc1 avcC) stts stsc stsz stco)))) mvex(mehd trex)
//	uuid  segment info (framehub): boot id, timeline origin, first capture time and sequence number
//	{ uuid fragment info (framehub): sequence numbers and capture times of its samples
//	  moof  mfhd traf(tfhd tfdt trun)
//	  mdat  the samples, AVCC (4-byte lengths), parameter sets in avcC only }*
//
// Every fragment is written with one write(2) and made durable with
// fsync(2): a crash leaves complete fragments plus at most one torn one,
// which repair truncates. The durations in mvhd, tkhd, mdhd and mehd are
// written as 0 and patched in place when the segment is finalised (fixed
// 8-byte fields, versions 1), so the moov never moves. The two uuid boxes
// are skipped by players; they make a segment self-describing, which is
// what resume after a crash reads (recover.go).

// timescale of the track: 90 kHz, the usual video clock; sample times are
// converted from nanoseconds by rounding each absolute time, so durations
// never drift.
const timescale = 90000

// Sample flags (ISO/IEC 14496-12 §8.8.3.1).
const (
	flagsSync    = 0x02000000 // sample_depends_on=2: an IDR
	flagsNonSync = 0x01010000 // sample_depends_on=1, sample_is_non_sync_sample
)

var (
	uuidSegment  = [16]byte{0x4b, 0xfd, 0xaf, 0xab, 0xef, 0x97, 0x48, 0x7c, 0x90, 0xe7, 0x66, 0xff, 0xed, 0x43, 0x66, 0x90}
	uuidFragment = [16]byte{0x44, 0xdc, 0x08, 0x09, 0x44, 0xba, 0x40, 0x05, 0xb9, 0x5f, 0x50, 0x1b, 0x3b, 0x55, 0x5a, 0xff}
)

// ticks converts a duration in ns to the track's timescale, rounding down.
func ticks(ns int64) int64 {
	if ns >= 0 {
		return ns / 1000 * timescale / 1_000_000 // ns/1000 keeps the product in range for ~1 year
	}
	return -ticks(-ns)
}

// trackParams describe the H.264 track of a segment.
type trackParams struct {
	width, height int
	sps, pps      []byte
}

// SegmentInfo is what a segment says about itself (its segment info box).
type SegmentInfo struct {
	BootID    [16]byte // /proc/sys/kernel/random/boot_id of the machine that recorded it
	BaseNS    int64    // producer timestamp (DTS, ns) of media time 0
	StartMono int64    // CLOCK_MONOTONIC capture time of the first sample
	StartReal int64    // CLOCK_REALTIME capture time of the first sample (the name)
	FirstSeq  uint64   // producer sequence number of the first sample
}

// FragmentInfo is what a fragment says about its samples (its fragment
// info box). Its samples have consecutive producer sequence numbers.
type FragmentInfo struct {
	FirstSeq  uint64
	Count     uint32
	FirstMono int64 // CLOCK_MONOTONIC capture time of the first sample
	LastMono  int64 // ... and of the last: the resume point after a crash
	FirstReal int64 // CLOCK_REALTIME capture time of the first sample
	LastDTS   int64 // producer DTS (ns) of the last sample
}

// LastSeq is the producer sequence number of the fragment's last sample.
func (fi FragmentInfo) LastSeq() uint64 { return fi.FirstSeq + uint64(fi.Count) - 1 }

const (
	segmentInfoSize  = 1 + 16 + 8*4
	fragmentInfoSize = 1 + 8 + 4 + 8*4
)

// durationFields are the offsets, in a segment file, of the 8-byte duration
// fields patched when the segment is finalised.
type durationFields [4]int64

// boxes builds ISO BMFF boxes in a byte slice.
type boxes struct{ b []byte }

func (w *boxes) u8(v uint8)   { w.b = append(w.b, v) }
func (w *boxes) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *boxes) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *boxes) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *boxes) zeros(n int) {
	for i := 0; i < n; i++ {
		w.b = append(w.b, 0)
	}
}

// open starts a box; close (with the returned offset) writes its size.
func (w *boxes) open(typ string) int {
	off := len(w.b)
	w.u32(0)
	w.b = append(w.b, typ[:4]...)
	return off
}

func (w *boxes) full(typ string, version uint8, flags uint32) int {
	off := w.open(typ)
	w.u32(uint32(version)<<24 | flags)
	return off
}

func (w *boxes) close(off int) { binary.BigEndian.PutUint32(w.b[off:], uint32(len(w.b)-off)) }

func (w *boxes) matrix() {
	for _, v := range []uint32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000} {
		w.u32(v)
	}
}

// mp4Time is seconds since 1904-01-01 UTC, the epoch of MP4 time fields.
func mp4Time(t time.Time) uint64 { return uint64(t.Unix() + 2082844800) }

// marshalInit returns ftyp, moov and the segment info box, and where the
// duration fields are.
func marshalInit(tp trackParams, info SegmentInfo) ([]byte, durationFields) {
	var w boxes
	var df durationFields
	created := mp4Time(time.Unix(0, info.StartReal))

	ftyp := w.open("ftyp")
	w.b = append(w.b, "isom"...)
	w.u32(0x200)
	w.b = append(w.b, "isomiso6iso2avc1mp41"...)
	w.close(ftyp)

	moov := w.open("moov")
	mvhd := w.full("mvhd", 1, 0)
	w.u64(created)
	w.u64(created)
	w.u32(timescale)
	df[0] = int64(len(w.b))
	w.u64(0) // duration, patched
	w.u32(0x10000)
	w.u16(0x100)
	w.zeros(2 + 8)
	w.matrix()
	w.zeros(24)
	w.u32(2) // next track id
	w.close(mvhd)

	trak := w.open("trak")
	tkhd := w.full("tkhd", 1, 3) // enabled, in movie
	w.u64(created)
	w.u64(created)
	w.u32(1) // track id
	w.u32(0)
	df[1] = int64(len(w.b))
	w.u64(0) // duration, patched
	w.zeros(8 + 2 + 2 + 2 + 2)
	w.matrix()
	w.u32(uint32(tp.width) << 16)
	w.u32(uint32(tp.height) << 16)
	w.close(tkhd)

	mdia := w.open("mdia")
	mdhd := w.full("mdhd", 1, 0)
	w.u64(created)
	w.u64(created)
	w.u32(timescale)
	df[2] = int64(len(w.b))
	w.u64(0)      // duration, patched
	w.u16(0x55c4) // "und"
	w.u16(0)
	w.close(mdhd)
	hdlr := w.full("hdlr", 0, 0)
	w.u32(0)
	w.b = append(w.b, "vide"...)
	w.zeros(12)
	w.b = append(w.b, "framehub video\x00"...)
	w.close(hdlr)

	minf := w.open("minf")
	vmhd := w.full("vmhd", 0, 1)
	w.zeros(8)
	w.close(vmhd)
	dinf := w.open("dinf")
	dref := w.full("dref", 0, 0)
	w.u32(1)
	url := w.full("url ", 0, 1) // media in this file
	w.close(url)
	w.close(dref)
	w.close(dinf)

	stbl := w.open("stbl")
	stsd := w.full("stsd", 0, 0)
	w.u32(1)
	marshalAVC1(&w, tp)
	w.close(stsd)
	for _, typ := range []string{"stts", "stsc", "stco"} {
		b := w.full(typ, 0, 0)
		w.u32(0)
		w.close(b)
	}
	stsz := w.full("stsz", 0, 0)
	w.u32(0)
	w.u32(0)
	w.close(stsz)
	w.close(stbl)
	w.close(minf)
	w.close(mdia)
	w.close(trak)

	mvex := w.open("mvex")
	mehd := w.full("mehd", 1, 0)
	df[3] = int64(len(w.b))
	w.u64(0) // fragment duration, patched
	w.close(mehd)
	trex := w.full("trex", 0, 0)
	w.u32(1) // track id
	w.u32(1) // sample description index
	w.zeros(12)
	w.close(trex)
	w.close(mvex)
	w.close(moov)

	seg := w.open("uuid")
	w.b = append(w.b, uuidSegment[:]...)
	w.u8(1) // version
	w.b = append(w.b, info.BootID[:]...)
	w.u64(uint64(info.BaseNS))
	w.u64(uint64(info.StartMono))
	w.u64(uint64(info.StartReal))
	w.u64(info.FirstSeq)
	w.close(seg)
	return w.b, df
}

// marshalAVC1 writes the avc1 sample entry with its avcC.
func marshalAVC1(w *boxes, tp trackParams) {
	avc1 := w.open("avc1")
	w.zeros(6)
	w.u16(1) // data reference index
	w.zeros(16)
	w.u16(uint16(tp.width))
	w.u16(uint16(tp.height))
	w.u32(0x480000) // 72 dpi
	w.u32(0x480000)
	w.u32(0)
	w.u16(1) // frame count
	name := "framehub H.264"
	w.u8(uint8(len(name)))
	w.b = append(w.b, name...)
	w.zeros(31 - len(name))
	w.u16(0x18)
	w.u16(0xffff)

	avcC := w.open("avcC")
	sps, pps := tp.sps, tp.pps
	w.u8(1)
	w.u8(sps[1])   // profile
	w.u8(sps[2])   // constraints
	w.u8(sps[3])   // level
	w.u8(0xfc | 3) // 4-byte NAL lengths
	w.u8(0xe0 | 1)
	w.u16(uint16(len(sps)))
	w.b = append(w.b, sps...)
	w.u8(1)
	w.u16(uint16(len(pps)))
	w.b = append(w.b, pps...)
	if p := spsInfo(sps); p.highProfile {
		// ISO/IEC 14496-15 §5.3.3.1.2: the high profiles carry the chroma
		// format and bit depths.
		w.u8(0xfc | uint8(p.chromaFormat))
		w.u8(0xf8 | uint8(p.bitDepthLuma-8))
		w.u8(0xf8 | uint8(p.bitDepthChroma-8))
		w.u8(0)
	}
	w.close(avcC)
	w.close(avc1)
}

// fragSample is one sample of a fragment being built.
type fragSample struct {
	dts  int64 // ticks from the segment's origin
	dur  uint32
	cto  int32 // PTS − DTS, ticks
	size uint32
	key  bool
}

// marshalFragment returns the fragment info box, moof and mdat of samples
// whose AVCC bytes are data.
func marshalFragment(seq uint32, info FragmentInfo, samples []fragSample, data [][]byte) []byte {
	total := 0
	for _, d := range data {
		total += len(d)
	}
	w := boxes{b: make([]byte, 0, 256+len(samples)*16+total)}
	fi := w.open("uuid")
	w.b = append(w.b, uuidFragment[:]...)
	w.u8(1)
	w.u64(info.FirstSeq)
	w.u32(info.Count)
	w.u64(uint64(info.FirstMono))
	w.u64(uint64(info.LastMono))
	w.u64(uint64(info.FirstReal))
	w.u64(uint64(info.LastDTS))
	w.close(fi)
	w.moofMdat(seq, samples, data)
	return w.b
}

// moofMdat appends the moof and mdat of samples whose AVCC bytes are data.
func (w *boxes) moofMdat(seq uint32, samples []fragSample, data [][]byte) {
	moof := w.open("moof")
	mfhd := w.full("mfhd", 0, 0)
	w.u32(seq)
	w.close(mfhd)
	traf := w.open("traf")
	tfhd := w.full("tfhd", 0, 0x020000) // default-base-is-moof
	w.u32(1)
	w.close(tfhd)
	tfdt := w.full("tfdt", 1, 0)
	w.u64(uint64(samples[0].dts))
	w.close(tfdt)
	// data offset, duration, size, flags, composition offset (signed: v1)
	trun := w.full("trun", 1, 0x000f01)
	w.u32(uint32(len(samples)))
	dataOffset := len(w.b)
	w.u32(0) // patched below
	for _, s := range samples {
		w.u32(s.dur)
		w.u32(s.size)
		if s.key {
			w.u32(flagsSync)
		} else {
			w.u32(flagsNonSync)
		}
		w.u32(uint32(s.cto))
	}
	w.close(trun)
	w.close(traf)
	w.close(moof)
	binary.BigEndian.PutUint32(w.b[dataOffset:], uint32(len(w.b)-moof+8))

	mdat := w.open("mdat")
	for _, d := range data {
		w.b = append(w.b, d...)
	}
	w.close(mdat)
}
