"""Offline model checks of libfastgen/src/cuda/attention_hopper.cu (no GPU needed; numpy):

  layouts   every element the wgmma descriptors read (PTX ISA canonical layouts, 128-byte
            swizzle applied to the address) is where the kernel's stores put it (swz_offset)
  algorithm the kernel's consumer math thread by thread (wgmma fragment layouts of the PTX ISA,
            the products done as matrix products): key tiles, masks, online softmax with the
            P V of tile j-1 overlapping the softmax of tile j, P repacked as A fragments, the
            epilogue; against a float64 reference, with bf16 inputs and P
  protocol  random interleavings of producer and the two consumers over the mbarriers
            (full_k/full_v/empty_k/empty_v) and the ping-pong named barriers: no deadlock, no
            slot overwritten while a wgmma reads it, no barrier left with a dangling arrival

They mirror the kernel by hand: change them with it.  Run: python3 bench/gpu/hopper_attention_model.py
"""
import math
import random

import numpy as np

# ---------------------------------------------------------------------------------- layouts

def swz_offset(r, c, R):
    return (c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4)


def sw128(addr):  # Swizzle<3,4,3> on a byte address
    return addr ^ (((addr >> 7) & 7) << 4)


def check_layouts():
    base, bad = 1024 * 37, 0
    for HD, BN in ((64, 128), (128, 128), (256, 64)):
        for cw in (0, 1):  # Q as A: K-major, 64 rows of consumer cw, k-step kk
            for kk in range(HD // 16):
                start = base + 64 * cw * 128 + (kk // 4) * 128 * 128 + (kk % 4) * 32
                for m in range(64):
                    for k in range(16):
                        hw = sw128(start + (m % 8) * 128 + (m // 8) * 1024 + (k % 8) * 2 + (k // 8) * 16)
                        col = 16 * kk + k
                        bad += hw != base + swz_offset(64 * cw + m, col // 8, 128) + (col % 8) * 2
        for kk in range(HD // 16):  # K as B: K-major, N = BN keys
            start = base + (kk // 4) * BN * 128 + (kk % 4) * 32
            for n in range(BN):
                for k in range(16):
                    hw = sw128(start + (n % 8) * 128 + (n // 8) * 1024 + (k % 8) * 2 + (k // 8) * 16)
                    col = 16 * kk + k
                    bad += hw != base + swz_offset(n, col // 8, BN) + (col % 8) * 2
        for kk in range(BN // 16):  # V as B: MN-major (k = key, n = head dim), LBO = BN * 128, SBO = 1024
            start = base + kk * 16 * 128
            for n in range(HD):
                for k in range(16):
                    hw = sw128(start + (n % 64) * 2 + (n // 64) * BN * 128 + (k % 8) * 128 + (k // 8) * 1024)
                    bad += hw != base + swz_offset(16 * kk + k, n // 8, BN) + (n % 8) * 2
    assert bad == 0, f"{bad} layout mismatches"
    print("layouts: ok")

# -------------------------------------------------------------------------------- algorithm
def bf16(x):
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000).astype(np.uint32)
    return u.view(np.float32)

def ex2(x): return np.exp2(x)

def run_case(G, HD, ctx, n, window, softcap, bs, seed):
    rng = np.random.default_rng(seed)
    BN = 64 if HD == 256 else 128
    T = n; total = ctx + n
    nblocks = (total + bs - 1) // bs + 2
    perm = rng.permutation(nblocks)
    btab = perm[: (total + bs - 1) // bs]
    Kpool = bf16(rng.uniform(-1, 1, (nblocks, bs, HD))); Vpool = bf16(rng.uniform(-1, 1, (nblocks, bs, HD)))
    Q = bf16(rng.uniform(-1, 1, (T, G, HD)))
    scale = 1 / math.sqrt(HD)
    def kv(pos): return Kpool[btab[pos // bs], pos % bs], Vpool[btab[pos // bs], pos % bs]
    # reference
    ref = np.zeros((T, G, HD))
    for t in range(T):
        p = ctx + t; lo = max(0, p - window + 1) if window else 0
        Ks = np.array([kv(j)[0] for j in range(lo, p + 1)], dtype=np.float64)
        Vs = np.array([kv(j)[1] for j in range(lo, p + 1)], dtype=np.float64)
        for h in range(G):
            s = Ks @ Q[t, h].astype(np.float64) * scale
            if softcap: s = softcap * np.tanh(s / softcap)
            w = np.exp(s - s.max()); ref[t, h] = (w @ Vs) / w.sum()
    out = np.full((T, G, HD), np.nan)
    rows = T * G
    tiles = [(r, min(r + 128, rows)) for r in range(0, rows, 128)]
    scale_log2 = (1.0 if softcap else scale) * 1.4426950408889634
    cap_mul = scale / softcap if softcap else 0
    for (rb_, re_) in tiles:
        pos_first = ctx + rb_ // G; pos_last = ctx + (re_ - 1) // G
        kv_lo = max(0, pos_first - window + 1) if window else 0
        n_tiles = (pos_last - kv_lo) // BN + 1
        # producer: key tiles (zero past s_hi)
        Kt, Vt = [], []
        for j in range(n_tiles):
            k0 = kv_lo + j * BN
            kk = np.zeros((BN, HD), np.float32); vv = np.zeros((BN, HD), np.float32)
            for i in range(BN):
                if k0 + i <= pos_last: kk[i], vv[i] = kv(k0 + i)
            Kt.append(kk); Vt.append(vv)
        # Q tile (zero rows past the end)
        Qs = np.zeros((128, HD), np.float32)
        for r in range(rb_, re_): Qs[r - rb_] = Q[r // G, r % G]
        for cw in range(2):
            wrow0 = rb_ + 64 * cw
            wrow_end = min(re_, wrow0 + 64)
            wq_lo = ctx + wrow0 // G; wq_hi = ctx + (wrow_end - 1) // G if wrow_end > wrow0 else -1
            tw = np.arange(128); warp = tw // 32; lane = tw % 32
            ra = wrow0 + 16 * warp + lane // 4; rbb = ra + 8
            qpa = np.where(ra < re_, ctx + ra // G, -1); qpb = np.where(rbb < re_, ctx + rbb // G, -1)
            i_idx = np.arange(BN // 2)
            # fragment coordinates of D (S: 64 x BN)
            Drow = (16 * warp)[:, None] + (lane // 4)[:, None] + 8 * ((i_idx[None, :] // 2) % 2)
            Dcol = 8 * (i_idx[None, :] // 4) + 2 * (lane % 4)[:, None] + (i_idx[None, :] % 2)
            o_idx = np.arange(HD // 2)
            Orow = (16 * warp)[:, None] + (lane // 4)[:, None] + 8 * ((o_idx[None, :] // 2) % 2)
            Ocol = 8 * (o_idx[None, :] // 4) + 2 * (lane % 4)[:, None] + (o_idx[None, :] % 2)
            Qw = Qs[64 * cw: 64 * cw + 64].astype(np.float64)
            o = np.zeros((128, HD // 2)); m = np.full((128, 2), -np.inf); l = np.zeros((128, 2))
            def softmax(S, k0):
                sc = S[Drow, Dcol].astype(np.float32).astype(np.float64)
                if softcap: sc = softcap * np.tanh(sc * cap_mul)
                kmax = k0 + BN - 1
                full = kmax <= wq_lo and (window == 0 or wq_hi - k0 < window)
                if not full:
                    qp = np.where((i_idx[None, :] & 2) != 0, qpb[:, None], qpa[:, None])
                    kp = k0 + (i_idx[None, :] // 4) * 8 + 2 * (lane[:, None] & 3) + (i_idx[None, :] & 1)
                    ok = (kp <= qp) & ((window == 0) | (qp - kp < window))
                    sc = np.where(ok, sc, -np.inf)
                alpha = np.zeros((128, 2))
                for h in range(2):
                    sel = [4 * nb + 2 * h + e for nb in range(BN // 8) for e in range(2)]
                    mx = sc[:, sel].max(axis=1)
                    mx = mx.reshape(32, 4).max(axis=1).repeat(4)  # quad: lanes sharing lane // 4
                    m_new = np.maximum(m[:, h], mx * scale_log2)
                    m_use = np.where(m_new == -np.inf, 0, m_new)
                    alpha[:, h] = ex2(m[:, h] - m_use)
                    x = ex2(sc[:, sel] * scale_log2 - m_use[:, None])
                    sc[:, sel] = x
                    l[:, h] = l[:, h] * alpha[:, h] + x.sum(axis=1)
                    m[:, h] = m_new
                return sc, alpha
            def pv(P, j):
                # A fragments from P (bf16) -> matrix 64 x BN, then O += A V
                A = np.zeros((64, BN))
                A[Drow, Dcol] = bf16(P)
                Om = np.zeros((64, HD)); Om[Orow, Ocol] = o
                Om += A @ Vt[j].astype(np.float64)
                o[:] = Om[Orow, Ocol]
            S = Qw @ Kt[0].astype(np.float64).T
            P, _ = softmax(S, kv_lo)
            for j in range(1, n_tiles):
                S = Qw @ Kt[j].astype(np.float64).T
                pv(P, j - 1)
                P, alpha = softmax(S, kv_lo + j * BN)
                o[:] = o * alpha[:, (o_idx // 2) % 2]
            pv(P, n_tiles - 1)
            lsum = l.reshape(32, 4, 2).sum(axis=1).repeat(4, axis=0)
            for t in range(128):
                for h in range(2):
                    r = ra[t] if h == 0 else rbb[t]
                    if r >= re_: continue
                    inv = 1 / lsum[t, h] if lsum[t, h] > 0 else 0
                    for nb in range(HD // 8):
                        for e in range(2):
                            out[r // G, r % G, 8 * nb + 2 * (lane[t] & 3) + e] = o[t, 4 * nb + 2 * h + e] * inv
    err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
    return err, np.isnan(out).any()

ALGO_CASES = [  # (group, head_dim, context, tokens, window, softcap, block_size)
    (1, 128, 0, 300, 0, 0, 16), (4, 128, 37, 45, 0, 0, 7), (8, 128, 500, 70, 0, 0, 16),
    (8, 128, 0, 33, 0, 0, 5), (4, 64, 40, 130, 24, 0, 8), (1, 64, 1000, 200, 300, 0, 16),
    (2, 256, 50, 100, 0, 0, 16), (4, 128, 200, 90, 0, 30.0, 16), (1, 128, 129, 129, 64, 20.0, 3),
    (8, 256, 10, 40, 17, 0, 4),
]


def check_algorithm():
    for i, c in enumerate(ALGO_CASES):
        err, nan = run_case(*c, seed=i)
        print(f"algorithm {c}: rel err {err:.2e}")
        assert not nan and err < 5e-3, c

# --------------------------------------------------------------------------------- protocol

class MBar:
    def __init__(s, count): s.count = count; s.pending = count; s.phase = 0
    def arrive(s):
        s.pending -= 1
        if s.pending == 0: s.phase += 1; s.pending = s.count
    def done(s, parity): return (s.phase & 1) != parity

def run(n_tiles, ST, seed):
    rnd = random.Random(seed)
    full_k = [MBar(1) for _ in range(ST)]; full_v = [MBar(1) for _ in range(ST)]; empty_k = [MBar(2) for _ in range(ST)]; empty_v = [MBar(2) for _ in range(ST)]
    kslot = [None] * ST; vslot = [None] * ST
    readers = [set() for _ in range(ST)]; vreaders = [set() for _ in range(ST)]  # (consumer, 'K'/'V', tile) reading the slot now
    named = {3: [0, set()], 4: [0, set()]}  # arrivals, waiting syncers
    log = []
    def bar_arrive(i):
        named[i][0] += 1
        check_named(i)
    def check_named(i):
        if named[i][0] >= 2:
            named[i][0] -= 2
            for w in named[i][1]: released.add((w, i))
            named[i][1].clear()
    released = set()
    def producer():
        pending = []  # landed-later copies
        for j in range(n_tiles):
            s = j % ST
            while not empty_k[s].done(((j // ST) & 1) ^ 1): yield
            assert not readers[s], f"overwrite K slot {s} while read {readers[s]}"
            kslot[s] = ('K', j); yield
            if j > 0:
                full_v[(j - 1) % ST].arrive(); yield
            while not empty_v[s].done(((j // ST) & 1) ^ 1): yield
            assert not vreaders[s], f"overwrite V slot {s} while read {vreaders[s]}"
            vslot[s] = ('V', j); yield
            full_k[s].arrive(); yield
        full_v[(n_tiles - 1) % ST].arrive()
    def consumer(cw):
        def turn_begin():
            bid = 3 + cw
            named[bid][0] += 1; named[bid][1].add(cw); check_named(bid)
            while (cw, bid) not in released: yield
            released.discard((cw, bid))
        def turn_end(last):
            if not last or cw == 0: bar_arrive(3 + (cw ^ 1))
        if cw == 1: bar_arrive(3)
        yield
        while not full_k[0].done(0): yield
        yield from turn_begin()
        assert kslot[0] == ('K', 0); readers[0].add((cw, 'K', 0))
        turn_end(False); yield
        readers[0].discard((cw, 'K', 0))  # wait<0>
        empty_k[0].arrive()
        for j in range(1, n_tiles):
            s, sp = j % ST, (j - 1) % ST
            while not full_k[s].done((j // ST) & 1): yield
            while not full_v[sp].done(((j - 1) // ST) & 1): yield
            yield from turn_begin()
            assert kslot[s] == ('K', j), (kslot[s], j); readers[s].add((cw, 'K', j))
            assert vslot[sp] == ('V', j - 1), (vslot[sp], j - 1); vreaders[sp].add((cw, 'V', j - 1))
            turn_end(False); yield
            readers[s].discard((cw, 'K', j)); empty_k[s].arrive(); yield  # wait<1>
            vreaders[sp].discard((cw, 'V', j - 1))  # wait<0>
            empty_v[sp].arrive(); yield
        sl = (n_tiles - 1) % ST
        while not full_v[sl].done(((n_tiles - 1) // ST) & 1): yield
        yield from turn_begin()
        assert vslot[sl] == ('V', n_tiles - 1); vreaders[sl].add((cw, 'V', n_tiles - 1))
        turn_end(True); yield
        vreaders[sl].discard((cw, 'V', n_tiles - 1))
    agents = {'P': producer(), 0: consumer(0), 1: consumer(1)}
    steps = 0
    while agents:
        k = rnd.choice(list(agents))
        try: next(agents[k])
        except StopIteration: del agents[k]
        steps += 1
        if steps > 200000: raise RuntimeError(f"deadlock n={n_tiles} ST={ST} agents={list(agents)}")
    assert named[3][0] == 0 and named[4][0] == 0, ("dangling named-barrier arrivals", named)



def check_protocol():
    for ST in (2, 3):
        for n in range(1, 8):
            for seed in range(200):
                run(n, ST, seed)
    print("protocol: ok")


if __name__ == "__main__":
    check_layouts()
    check_algorithm()
    check_protocol()
