#!/usr/bin/env python3
# Consistency probe (tests/probe/consist.bats):
# readers searching exactly for every row; every answer is checked against
# the history: no duplicate, no deleted row, no row missing, no stale version.
import random, subprocess, sys, threading, time, math, os
waddr = sys.argv[1]; raddrs = sys.argv[2].split(','); secs = float(sys.argv[3])
coll = sys.argv[4]; out = sys.argv[5]
DIM = 8
def rest(i):
    return [((i * 7 + j * 13) % 16) / 4.0 for j in range(1, DIM)]
def vec(i, v):
    return [float(v)] + rest(i)
hist = {}          # id -> list of (start, end, state) ; state: version int or None (deleted) or '?' unknown
lock = threading.Lock()
stop = time.monotonic() + secs
# PROBE_FILTER=T: rows carry their version in field ver, and every other
# search has --filter 'ver >= T': rows below it must be left out.
FILTER = int(os.environ.get('PROBE_FILTER', '0'))
errors = []
def run(args, inp=None):
    return subprocess.run(args, input=inp, capture_output=True, text=True)
def writer():
    rnd = random.Random(7)
    nxt = 1
    live = {}
    ops = 0
    while time.monotonic() < stop:
        r = rnd.random()
        if r < 0.4 or len(live) < 50:
            ids = list(range(nxt, nxt + 20)); nxt += 20
            args = ['mv-insert', '-q', '-a', waddr, '--ids-first', coll]
            new = {i: 1 for i in ids}
        elif r < 0.7:
            ids = rnd.sample(sorted(live), 10)
            args = ['mv-insert', '-q', '-a', waddr, '--ids-first', '--upsert', coll]
            new = {i: live[i] + 1 for i in ids}
        else:
            ids = rnd.sample(sorted(live), 10)
            args = ['mv-delete', '-q', '-a', waddr, coll]
            new = {i: None for i in ids}
        if new[ids[0]] is None:
            inp = ''.join('%d\n' % i for i in ids)
        elif FILTER:
            # jsonl, with the version in the field the readers filter on
            args = args[:-1] + ['--format', 'jsonl', coll]
            args.remove('--ids-first')
            inp = ''.join('{"id":%d,"vector":[%s],"ver":%d}\n' % (i, ','.join('%g' % x for x in vec(i, new[i])), new[i]) for i in ids)
        else:
            inp = ''.join('%d %s\n' % (i, ' '.join('%g' % x for x in vec(i, new[i]))) for i in ids)
        t0 = time.monotonic()
        p = run(args, inp)
        t1 = time.monotonic()
        ok = p.returncode == 0
        with lock:
            for i in ids:
                hist.setdefault(i, []).append((t0, t1, new[i] if ok else '?'))
        if not ok:
            errors.append('write failed (%d): %s' % (p.returncode, p.stderr.strip()[:200]))
            # unknown outcome: stop touching these ids
            for i in ids: live.pop(i, None)
            continue
        for i in ids:
            if new[i] is None: live.pop(i, None)
            else: live[i] = new[i]
        ops += 1
    with open(out + '.ops', 'w') as f: f.write('%d\n' % ops)
results = []
def reader(addr):
    q = '0 ' * DIM + '\n'
    n = 0
    while time.monotonic() < stop:
        n += 1
        fl = FILTER if FILTER and n % 2 else 0
        extra = ['--filter', 'ver >= %d' % fl] if fl else []
        t0 = time.monotonic()
        p = run(['mv-search', '-q', '-a', addr, '-k', '100000', '--nprobe', '64'] + extra + [coll], q)
        t1 = time.monotonic()
        tag = addr + ('/filter' if fl else '')
        if p.returncode != 0:
            results.append((t0, t1, tag, None, p.returncode, p.stderr.strip()[:300]))
            continue
        got = {}
        dup = []
        for line in p.stdout.splitlines():
            f = line.split('\t')
            i = int(f[2]); d = float(f[3])
            rr = sum(x * x for x in rest(i))
            v = round(math.sqrt(max(d - rr, 0)))
            if i in got: dup.append(i)
            got[i] = v
        results.append((t0, t1, tag, got, dup, None))
def getter(addr):
    # mv-get --all (SCAN pages): each row once, at a version allowed;
    # the vector's first component is the version.
    while time.monotonic() < stop:
        t0 = time.monotonic()
        p = run(['mv-get', '-q', '-a', addr, '--all', coll])
        t1 = time.monotonic()
        if p.returncode != 0:
            results.append((t0, t1, addr + '/get', None, p.returncode, p.stderr.strip()[:300]))
            continue
        got = {}
        dup = []
        for line in p.stdout.splitlines():
            f = line.split('\t')
            i = int(f[0]); v = round(float(f[1].split(',')[0]))
            if i in got: dup.append(i)
            got[i] = v
        results.append((t0, t1, addr + '/get', got, dup, None))
getters = os.environ.get('PROBE_GET', '').split(',') if os.environ.get('PROBE_GET') else []
ths = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(a,)) for a in raddrs] + [threading.Thread(target=getter, args=(raddrs[int(g)],)) for g in getters]
for t in ths: t.start()
for t in ths: t.join()
bad = 0; fails = {}; nok = 0
for (t0, t1, addr, got, dup, err) in results:
    if got is None:
        fails[(addr, dup)] = fails.get((addr, dup), 0) + 1
        if dup not in (69,): errors.append('search via %s failed %d: %s' % (addr, dup, err))
        continue
    nok += 1
    if dup:
        bad += 1; errors.append('duplicates via %s: %s' % (addr, dup[:5])); continue
    with lock:
        items = list(hist.items())
    wrong = []
    for i, h in items:
        must = None; allowed = set()
        for (s, e, st) in h:
            if e < t0: must = st
            elif s < t1: allowed.add(st)
        allowed.add(must)
        state = got.get(i)
        if '?' in allowed: continue
        if addr.endswith('/filter'):
            allowed = {a if a is not None and a >= FILTER else None for a in allowed}
        if state not in allowed:
            wrong.append((i, state, allowed, h))
    if wrong:
        bad += 1
        i, state, allowed, h = wrong[0]
        missing = sum(1 for w in wrong if w[1] is None)
        errors.append('%d ids wrong (%d missing, ids %s) via %s at [%.3f,%.3f]; first: id %d saw %s, allowed %s; hist %s' % (len(wrong), missing, [w[0] for w in wrong[:12]], addr, t0, t1, i, state, allowed, [(round(s,3), round(e,3), st) for s, e, st in h]))
    known = dict(items)
    for i in got:
        if i not in known:
            bad += 1; errors.append('unknown id %d' % i)
byaddr = {}
for e in errors:
    for a in raddrs:
        if any(('via %s%s ' % (a, t)) in e for t in ('', '/get', '/filter')): byaddr[a] = byaddr.get(a, 0) + 1
print('searches ok %d, failed %s, bad %d, rows tracked %d; bad by address %s (writer %s)' % (nok, fails, bad, len(hist), byaddr, waddr))
for e in errors[:15]: print(e)
sys.exit(1 if bad else 0)
