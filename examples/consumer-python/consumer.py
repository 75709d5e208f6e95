#!/usr/bin/env python3
"""A framehub consumer in Python, written from docs/PROTOCOL.md alone.

This example shows how to:
  1. connect to the producer's AF_UNIX SOCK_SEQPACKET socket, check that the
     producer runs as an expected uid (SO_PEERCRED) and subscribe
     (Hello -> Welcome), with a budget, a deadline and a policy;
  2. receive surfaces' file descriptors with recvmsg + SCM_RIGHTS (Announce)
     and map each surface once, read-only (mmap PROT_READ, MAP_SHARED);
  3. for every Frame, find the Y plane, verify the test-source stamp
     (PROTOCOL.md section 9: CRC-32C in pure Python) against Frame.seq when
     the stream is stamped (its first frame is), and Release the lease at
     once;
  4. answer Ping, follow Caps/Forget/re-Announce, stop on Bye (6 = evicted),
     also when Linux reports ECONNRESET ahead of it (PROTOCOL.md section 2);
  5. print a JSON summary: {"frames", "mismatches", "dropped", "stamped", ...}.

Needs only the standard library and msgpack (Debian: python3-msgpack).
Exit status: 0 ok, 1 error (connection refused, protocol error, evicted),
2 stamp mismatches.
"""

import argparse
import array
import errno
import fcntl
import json
import mmap
import os
import signal
import socket
import struct
import sys
import time

try:
    import msgpack
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("consumer.py: the msgpack module is missing "
                     "(Debian: apt-get install python3-msgpack)\n")
    sys.exit(1)

# Message type tags (PROTOCOL.md section 4).
HELLO, WELCOME, REJECT, ANNOUNCE, FRAME, FORGET, CAPS, EOS = 1, 2, 3, 4, 5, 6, 7, 8
RELEASE, REQUEST_KEYFRAME, PING, PONG, BYE = 9, 10, 11, 12, 13
KNOWN = range(1, 14)
NAMES = {1: "Hello", 2: "Welcome", 3: "Reject", 4: "Announce", 5: "Frame", 6: "Forget",
         7: "Caps", 8: "EOS", 9: "Release", 10: "RequestKeyframe", 11: "Ping", 12: "Pong",
         13: "Bye"}
MAX_PACKET, MAX_FDS = 65536, 253
KIND_MEMFD, KIND_DMABUF = 1, 2
FLAG_DISCONT = 2
CODE_MAX_HOLD = 6
DMA_BUF_IOCTL_SYNC, SYNC_START_READ, SYNC_END_READ = 0x40086200, 1, 5

# The stamp (PROTOCOL.md section 9).
STAMP_ROWS, STAMP_MAX_WIDTH, STAMP_MIN_WIDTH = 8, 256, 64


class ProtocolError(Exception):
    """The producer sent something the protocol does not allow."""


class Untrusted(Exception):
    """The socket is served by a process of an unexpected uid."""


class Refused(Exception):
    """The producer rejected the subscription or ended the session."""

    def __init__(self, what, code, reason):
        super().__init__("%s code %d: %s" % (what, code, reason))
        self.code = code


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), table-driven: one lookup per byte."""
    crc ^= 0xFFFFFFFF
    table = CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "CRC-32C self-check"


class NoStamp(ValueError):
    """The region holds no stamp (PROTOCOL.md section 9, step 1)."""


def read_stamp(buf, offset, stride, width):
    """Verifies the stamp of the Y plane starting at buf[offset] and returns
    its (seq, mono_ns); raises NoStamp when there is none, ValueError when it
    is torn."""
    if width < STAMP_MIN_WIDTH:
        raise ValueError("frame width %d is below the stamp's minimum %d" % (width, STAMP_MIN_WIDTH))
    rw = min(width, STAMP_MAX_WIDTH)
    rows = [bytes(buf[offset + r * stride: offset + r * stride + rw]) for r in range(STAMP_ROWS)]
    if any(len(r) != rw for r in rows):
        raise ValueError("stamp rows exceed the mapping")
    magic, ver, w, nrows, _res, seq, mono, crc = struct.unpack_from("<4sHHHHQqI", rows[0])
    if magic != b"FHST" or ver != 1 or w != rw or nrows != STAMP_ROWS:
        raise NoStamp("no stamp")
    data = rows[0][:28] + rows[0][32:] + b"".join(rows[1:])
    if crc32c(data) != crc:
        raise ValueError("stamp checksum mismatch")
    return seq, mono


def default_socket():
    """The default address rule of PROTOCOL.md section 2 ("" when none)."""
    if os.environ.get("FRAMEHUB_SOCKET"):
        return os.environ["FRAMEHUB_SOCKET"]
    if os.geteuid() == 0:
        return "/run/framehub/framehub.sock"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "framehub", "framehub.sock")
    return ""  # no /tmp fallback: another user could create that directory first


def producer_uids():
    """The uids the producer may run as: $FRAMEHUB_PRODUCER_UID (uids or user
    names, comma-separated), else root and our own effective uid."""
    env = os.environ.get("FRAMEHUB_PRODUCER_UID", "").strip()
    if not env:
        return {0, os.geteuid()}
    import pwd
    uids = set()
    for f in env.split(","):
        f = f.strip()
        uids.add(int(f) if f.isdigit() else pwd.getpwnam(f).pw_uid)
    return uids


def check_producer(sock, addr):
    """PROTOCOL.md section 2: refuse a listener of an unexpected uid before
    sending anything (SO_PEERCRED: struct ucred {pid, uid, gid})."""
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    want = producer_uids()
    if uid not in want:
        raise Untrusted("%s is served by pid %d running as uid %d (gid %d), not an expected producer uid (%s); "
                        "nothing was sent. If that is your producer, set FRAMEHUB_PRODUCER_UID=%d"
                        % (addr, pid, uid, gid, ", ".join(str(u) for u in sorted(want)), uid))


def close_fds(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class Surface:
    """An announced surface: its fds (owned here) and lazy read-only maps."""

    def __init__(self, desc, fds):
        self.id = desc.get("id", 0)
        self.gen = desc.get("gen", 0)
        self.kind = desc.get("kind", 0)
        self.size = desc.get("size", 0)
        self.fds = fds
        self.maps = {}

    def map(self, i):
        if i not in self.maps:
            if i >= len(self.fds):
                raise ProtocolError("surface %d has %d fds, no fd %d" % (self.id, len(self.fds), i))
            fd = self.fds[i]
            length = min(self.size, os.fstat(fd).st_size)
            self.maps[i] = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        return self.maps[i]

    def sync(self, flags):
        """DMA_BUF_IOCTL_SYNC around CPU reads of a dmabuf surface."""
        for i in self.maps:
            while True:
                try:
                    fcntl.ioctl(self.fds[i], DMA_BUF_IOCTL_SYNC, struct.pack("<Q", flags))
                    break
                except OSError as e:
                    if e.errno not in (errno.EINTR, errno.EAGAIN):
                        raise

    def close(self):
        for m in self.maps.values():
            m.close()
        self.maps = {}
        close_fds(self.fds)
        self.fds = []


class Consumer:
    def __init__(self, args):
        self.args = args
        self.sock = None
        self.caps = {}
        self.surfaces = {}
        self.stats = {"frames": 0, "mismatches": 0, "dropped": 0}
        self.stamped = None  # decided by the first frame: True, False (not verified)
        self.first_seq = self.last_seq = None
        self.welcome = {}
        self.stop = False

    # -- packets ----------------------------------------------------------
    def send(self, tag, body):
        self.sock.sendmsg([bytes([tag]) + msgpack.packb(body, use_bin_type=True)])

    def recv(self):
        """Returns (tag, body, fds); tag None for an unknown type (ignored)."""
        data, anc, flags, _ = self.sock.recvmsg(
            MAX_PACKET, socket.CMSG_SPACE(MAX_FDS * 4), socket.MSG_CMSG_CLOEXEC)
        fds = []
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                fds.extend(a)
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            close_fds(fds)
            raise ProtocolError("packet truncated (flags %#x)" % flags)
        if not data:
            close_fds(fds)
            raise EOFError("the producer closed the connection")
        tag = data[0]
        if tag not in KNOWN:
            close_fds(fds)
            return None, None, []
        try:
            body = msgpack.unpackb(data[1:], raw=False) if len(data) > 1 else None
        except Exception as e:  # msgpack raises several types, ExtraData for trailing bytes
            close_fds(fds)
            raise ProtocolError("%s: undecodable body: %s" % (NAMES[tag], e))
        if len(data) == 1 or not isinstance(body, dict):
            close_fds(fds)
            raise ProtocolError("%s: body is not a map" % NAMES[tag])
        if tag != ANNOUNCE and fds:
            close_fds(fds)
            raise ProtocolError("%s carried %d fds" % (NAMES[tag], len(fds)))
        return tag, body, fds

    # -- session ----------------------------------------------------------
    def connect(self):
        addr = self.args.socket
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(self.args.idle_timeout)
        self.sock.connect(addr)
        try:
            check_producer(self.sock, self.args.socket)
        except Untrusted:
            self.sock.close()  # not even a Bye to an impostor
            self.sock = None
            raise
        try:
            self.send(HELLO, {
                "major": 1, "minor": 0, "name": self.args.name, "stream": self.args.stream,
                "max_in_flight": self.args.max_in_flight, "max_hold_ms": self.args.max_hold_ms,
                "policy": self.args.policy, "flags": 0})
        except OSError:
            pass  # refused at once (too many, denied): the Reject waiting for us says why
        reset = False
        while True:
            try:
                tag, m, fds = self.recv()
            except ConnectionResetError:
                # The producer refused us and closed with our Hello unread:
                # the kernel reports the reset once, then the Reject it sent.
                if reset:
                    raise
                reset = True
                continue
            close_fds(fds)
            if tag == WELCOME:
                break
            if tag in (REJECT, BYE):
                raise Refused(NAMES[tag], m.get("code", 0), m.get("reason", ""))
            if tag is not None:
                raise ProtocolError("expected Welcome, got %s" % NAMES[tag])
        if m.get("major", 0) != 1:
            raise ProtocolError("producer speaks protocol %s.%s" % (m.get("major"), m.get("minor")))
        self.welcome = m
        self.caps = m.get("caps") or {}
        log("subscribed: session %d, stream %s, %s %dx%d, budget %d, max_hold %d ms, policy %s" % (
            m.get("session", 0), m.get("stream", ""), self.caps.get("format", "?"),
            self.caps.get("width", 0), self.caps.get("height", 0), m.get("max_in_flight", 0),
            m.get("max_hold_ms", 0), m.get("policy", "")))

    def announce(self, m, fds):
        descs = m.get("surfaces") or []
        if not descs or len(fds) != sum(d.get("nfds", 0) for d in descs):
            close_fds(fds)
            raise ProtocolError("Announce of %d surfaces carried %d fds" % (len(descs), len(fds)))
        for d in descs:
            n = d.get("nfds", 0)
            mine, fds = fds[:n], fds[n:]
            old = self.surfaces.pop(d.get("id", 0), None)
            if old is not None:
                old.close()  # an older generation: we hold no frame on it
            self.surfaces[d.get("id", 0)] = Surface(d, mine)

    def frame(self, m):
        s = self.surfaces.get(m.get("surface", 0))
        if s is None or s.gen != m.get("gen", 0):
            raise ProtocolError("frame %d names surface %d gen %d that was not announced" % (
                m.get("seq", 0), m.get("surface", 0), m.get("gen", 0)))
        seq = m.get("seq", 0)
        self.stats["frames"] += 1
        self.stats["dropped"] += m.get("dropped", 0)
        if self.first_seq is None:
            self.first_seq = seq
        self.last_seq = seq
        try:
            if self.args.verify and self.caps.get("format") == "NV12" and self.stamped is not False:
                planes = m.get("planes") or self.caps.get("planes") or []
                if not planes:
                    raise ProtocolError("frame %d has no plane layout" % seq)
                y = planes[0]
                mem = s.map(y.get("fd", 0))
                if y.get("offset", 0) + y.get("size", 0) > len(mem):
                    raise ProtocolError("frame %d: Y plane exceeds surface %d" % (seq, s.id))
                if s.kind == KIND_DMABUF:
                    s.sync(SYNC_START_READ)
                try:
                    got, _ = read_stamp(mem, y.get("offset", 0), y.get("stride", 0), self.caps.get("width", 0))
                    self.stamped = True
                    if got != seq:
                        raise ValueError("stamp says frame %d" % got)
                except NoStamp as e:
                    if self.stamped is None:
                        # The first frame has none: a camera or GStreamer's
                        # test source, not the synthetic source. Said once.
                        self.stamped = False
                        log("the stream carries no stamp (not the synthetic source): frames are not verified")
                    else:
                        self.stats["mismatches"] += 1
                        log("stamp mismatch on frame %d: %s" % (seq, e))
                except ValueError as e:
                    self.stamped = True
                    self.stats["mismatches"] += 1
                    log("stamp mismatch on frame %d: %s" % (seq, e))
                finally:
                    if s.kind == KIND_DMABUF:
                        s.sync(SYNC_END_READ)
        finally:
            # Release at once, well before max_hold: we keep no frame.
            self.send(RELEASE, {"leases": [m.get("lease", 0)]})

    def run(self):
        self.connect()
        deadline = time.monotonic() + self.args.duration if self.args.duration > 0 else None
        reset = False
        while not self.stop:
            if self.args.frames and self.stats["frames"] >= self.args.frames:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                tag, m, fds = self.recv()
            except socket.timeout:
                raise ProtocolError("no packet from the producer within %.1f s" % self.args.idle_timeout)
            except InterruptedError:
                continue
            except ConnectionResetError:
                # The producer closed the session while packets we sent
                # (our last Releases) were unread: Linux reports the reset
                # once, ahead of the packets it queued for us before
                # closing. Read on: its Bye (or EOF) follows.
                if reset:
                    raise
                reset = True
                continue
            if tag == ANNOUNCE:
                self.announce(m, fds)
            elif tag == FRAME:
                self.frame(m)
            elif tag == FORGET:
                for i in m.get("ids") or []:
                    s = self.surfaces.pop(i, None)
                    if s is not None:
                        s.close()
            elif tag == CAPS:
                self.caps = m
            elif tag == PING:
                self.send(PONG, {"token": m.get("token", 0), "mono_ns": m.get("mono_ns", 0)})
            elif tag == BYE:
                raise Refused("Bye", m.get("code", 0), m.get("reason", ""))
            elif tag in (WELCOME, REJECT):
                raise ProtocolError("%s after the handshake" % NAMES[tag])
            # EOS, Pong, unknown: nothing to do.

    def close(self):
        for s in self.surfaces.values():
            s.close()
        self.surfaces = {}
        if self.sock is not None:
            try:
                self.sock.setblocking(False)
                self.send(BYE, {"code": 0, "reason": "consumer closing"})
            except OSError:
                pass
            self.sock.close()
            self.sock = None


def log(msg):
    sys.stderr.write("consumer.py: %s\n" % msg)
    sys.stderr.flush()


def main():
    p = argparse.ArgumentParser(description="framehub consumer in Python (wire protocol 1.x)")
    p.add_argument("--socket", default=default_socket(), help="producer socket (path or @abstract)")
    p.add_argument("--stream", default="raw")
    p.add_argument("--name", default="consumer-python")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: no limit)")
    p.add_argument("--max-in-flight", type=int, default=4)
    p.add_argument("--max-hold-ms", type=int, default=2000)
    p.add_argument("--policy", default="queue", choices=["queue", "latest"])
    p.add_argument("--idle-timeout", type=float, default=10.0, help="fail when no packet arrives for this long (s)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="do not check the stamps")
    args = p.parse_args()
    if not args.socket:
        p.error("no default producer socket (not root, XDG_RUNTIME_DIR not set): give --socket, or set "
                "FRAMEHUB_SOCKET or XDG_RUNTIME_DIR")

    c = Consumer(args)

    def on_signal(_sig, _frame):
        c.stop = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    start = time.monotonic()
    status, error = 0, None
    try:
        c.run()
    except Refused as e:
        status, error = 1, str(e)
        if e.code == CODE_MAX_HOLD:
            error = "evicted: " + error
    except (ProtocolError, EOFError, OSError, Untrusted) as e:
        status, error = 1, "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()
    seconds = time.monotonic() - start
    summary = dict(c.stats)
    summary.update({
        "seconds": round(seconds, 3),
        "fps": round(c.stats["frames"] / seconds, 1) if seconds > 0 else 0,
        "first_seq": c.first_seq, "last_seq": c.last_seq,
        "session": c.welcome.get("session"),
        "stamped": c.stamped,
    })
    if error:
        summary["error"] = error
        log(error)
    print(json.dumps(summary), flush=True)
    if status == 0 and c.stats["mismatches"]:
        status = 2
    sys.exit(status)


if __name__ == "__main__":
    main()
