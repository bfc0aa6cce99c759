"""Reading a SQLite file byte by byte, without SQLite: the write-ahead-log checksum walk that
detects a damaged log before any connection could checkpoint it away, and the b-tree page scan
that salvages rows from a damaged database (used by :func:`mdm_exact.runtime.store.recover_store`).
Format: https://www.sqlite.org/fileformat2.html (sections 1.6 b-tree pages, 4 the WAL).
"""

from __future__ import annotations

import os
import struct
import time

SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_MAGIC = SQLITE_MAGIC

# --------------------------------------------------------------------------- the write-ahead log

_WAL_POWERS: dict = {}


def _wal_powers(npairs: int):
    """``M^j mod 2^64`` for j < npairs, M = [[1, 1], [1, 2]]: the WAL checksum is linear in the words."""
    import numpy as np

    if npairs not in _WAL_POWERS:
        P = np.empty((npairs, 2, 2), dtype=np.uint64)
        m = np.eye(2, dtype=np.uint64)
        step = np.array([[1, 1], [1, 2]], dtype=np.uint64)
        for j in range(npairs):
            P[j] = m
            m = (step @ m) & np.uint64(0xFFFFFFFF)
        _WAL_POWERS[npairs] = P
    return _WAL_POWERS[npairs]


def _wal_checksum(data: bytes, big: bool, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes) continuing from ``(s0, s1)``.

    Per pair of 32-bit words (a, b): s0 += a + s1; s1 += b + s0, mod 2^32. The state after n
    pairs is M^n (s0, s1) + sum_k M^(n-1-k) (a_k, a_k + b_k) with M = [[1, 1], [1, 2]].
    """
    import numpy as np

    w = np.frombuffer(data, dtype=">u4" if big else "<u4").astype(np.uint64)
    a, b = w[0::2], w[1::2]
    n = a.size
    P = _wal_powers(n + 1)
    rev = P[n - 1 :: -1] if n else P[:0]  # M^(n-1-k) for k = 0..n-1
    v0, v1 = a, a + b
    mask = 0xFFFFFFFF
    r0 = int(np.sum(rev[:, 0, 0] * v0 + rev[:, 0, 1] * v1, dtype=np.uint64)) & mask
    r1 = int(np.sum(rev[:, 1, 0] * v0 + rev[:, 1, 1] * v1, dtype=np.uint64)) & mask
    Mn = P[n]
    r0 = (r0 + int(Mn[0, 0]) * s0 + int(Mn[0, 1]) * s1) & mask
    r1 = (r1 + int(Mn[1, 0]) * s0 + int(Mn[1, 1]) * s1) & mask
    return r0, r1


def wal_damage(path) -> str | None:
    """Why the write-ahead log ``path-wal`` is damaged, or None (no log, or a sound one).

    SQLite reads a log up to its first frame that does not verify and ignores the rest, so
    committed transactions after a damaged frame are silently dropped (and lost at the next
    checkpoint). Damage here means: the log header does not verify while frames follow it,
    or a commit frame of the current log generation (its salts) follows the first frame
    that does not verify. A torn last transaction (a crash while appending) is not damage.
    The log is read twice when damage is seen, so that a log being appended to by another
    process is not mistaken for a damaged one.
    """
    wal = os.fspath(path) + "-wal"
    verdict = None
    for _ in range(3):
        try:
            with open(wal, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"it cannot be read: {exc}"
        verdict = _wal_verdict(data)
        if verdict is None:
            return None
        time.sleep(0.05)
        try:
            with open(wal, "rb") as fh:
                again = fh.read()
        except OSError:
            continue
        if again == data:
            return verdict
    return verdict


def _wal_verdict(data: bytes) -> str | None:
    if len(data) < 32:
        return None if len(data) == 0 else f"{len(data)} bytes, shorter than a log header"
    magic = int.from_bytes(data[0:4], "big")
    if magic not in (0x377F0682, 0x377F0683):
        return f"bad magic number {data[0:4].hex()}"
    big = bool(magic & 1)
    ps = int.from_bytes(data[8:12], "big")
    ps = 65536 if ps == 1 else ps
    frame = 24 + ps
    nframes = (len(data) - 32) // frame if 512 <= ps <= 65536 else 0
    s0, s1 = _wal_checksum(data[:24], big, 0, 0)
    if (s0, s1) != (int.from_bytes(data[24:28], "big"), int.from_bytes(data[28:32], "big")):
        return "the log header does not verify" if nframes else None
    if not nframes:
        return None
    salt = data[16:24]
    k = 0
    while k < nframes:
        off = 32 + k * frame
        hdr = data[off : off + 24]
        if hdr[8:16] != salt:
            break
        c0, c1 = _wal_checksum(hdr[:8] + data[off + 24 : off + frame], big, s0, s1)
        if (c0, c1) != (int.from_bytes(hdr[16:20], "big"), int.from_bytes(hdr[20:24], "big")):
            break
        s0, s1 = c0, c1
        k += 1
    for j in range(k + 1, nframes):
        off = 32 + j * frame
        if data[off + 8 : off + 16] == salt and int.from_bytes(data[off + 4 : off + 8], "big") != 0:
            return f"frame {k + 1} of {nframes} does not verify and committed frames follow it"
    return None




def _varint(buf, i):
    """SQLite varint at ``buf[i]``: (value, next index)."""
    v = 0
    for j in range(8):
        b = buf[i + j]
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + j + 1
    return (v << 8) | buf[i + 8], i + 9


def _decode_record(payload: bytes):
    hsize, i = _varint(payload, 0)
    if hsize > len(payload) or hsize < 1:
        raise ValueError("bad record header")
    types = []
    while i < hsize:
        t, i = _varint(payload, i)
        types.append(t)
    pos = hsize
    values = []
    for t in types:
        if t == 0:
            values.append(None)
        elif 1 <= t <= 6:
            n = (1, 2, 3, 4, 6, 8)[t - 1]
            values.append(int.from_bytes(payload[pos : pos + n], "big", signed=True))
            pos += n
        elif t == 7:
            values.append(struct.unpack(">d", payload[pos : pos + 8])[0])
            pos += 8
        elif t in (8, 9):
            values.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2
            chunk = payload[pos : pos + n]
            values.append(chunk.decode("utf-8") if t % 2 else bytes(chunk))
            pos += n
        else:
            raise ValueError("reserved serial type")
        if pos > len(payload):
            raise ValueError("record runs past its payload")
    return tuple(values)


def _scan_pages(data: bytes, *, wal: bool):
    """Yield decoded rows of every table-leaf cell found in a database or WAL image."""
    if wal:
        if len(data) < 32:
            return
        page_sizes = [int.from_bytes(data[8:12], "big")]
    else:
        ps = int.from_bytes(data[16:18], "big") if data[:16] == _SQLITE_MAGIC else 0
        ps = 65536 if ps == 1 else ps
        page_sizes = [ps] if ps >= 512 and ps & (ps - 1) == 0 else [1024 << k for k in range(7)]
    for ps in page_sizes:
        if not (512 <= ps <= 65536):
            continue
        if wal:
            pages = {}
            off = 32
            while off + 24 + ps <= len(data):
                pgno = int.from_bytes(data[off : off + 4], "big")
                pages.setdefault(pgno, []).append(data[off + 24 : off + 24 + ps])
                off += 24 + ps
            images = [(pgno, img) for pgno, imgs in pages.items() for img in imgs]

            def page_of(pgno, _pages=pages, _main=None):
                imgs = _pages.get(pgno)
                return imgs[-1] if imgs else None

        else:
            npages = len(data) // ps + (1 if len(data) % ps else 0)
            images = [(k + 1, data[k * ps : (k + 1) * ps]) for k in range(npages)]

            def page_of(pgno, _ps=ps):
                start = (pgno - 1) * _ps
                return data[start : start + _ps] if 0 < pgno and start + _ps <= len(data) else None

        for pgno, img in images:
            yield from _leaf_cells(img, pgno, ps, page_of)


def _leaf_cells(img: bytes, pgno: int, ps: int, page_of):
    hdr = 100 if pgno == 1 else 0
    if len(img) < hdr + 8 or img[hdr] != 0x0D:
        return
    ncells = int.from_bytes(img[hdr + 3 : hdr + 5], "big")
    U = ps  # no reserved bytes in stores we create
    X = U - 35
    M = ((U - 12) * 32 // 255) - 23
    for j in range(ncells):
        try:
            ptr = int.from_bytes(img[hdr + 8 + 2 * j : hdr + 10 + 2 * j], "big")
            if not (hdr + 8 <= ptr < len(img)):
                continue
            P, i = _varint(img, ptr)
            _, i = _varint(img, i)  # rowid
            if P <= X:
                payload = img[i : i + P]
                if len(payload) != P:
                    continue
            else:
                K = M + ((P - M) % (U - 4))
                local = K if K <= X else M
                payload = bytearray(img[i : i + local])
                nxt = int.from_bytes(img[i + local : i + local + 4], "big")
                hops = 0
                while len(payload) < P and nxt and hops < 100_000:
                    page = page_of(nxt)
                    if page is None:
                        break
                    nxt = int.from_bytes(page[:4], "big")
                    payload += page[4 : 4 + min(U - 4, P - len(payload))]
                    hops += 1
                if len(payload) != P:
                    continue
                payload = bytes(payload)
            yield _decode_record(payload)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error):
            continue
