import sys, time, redis
# usage: pipeline_bench.py PORT SECONDS [set|incr|incr1]: pipelines of 32 SETs of distinct
# keys, INCRs of 32 keys, or INCRs of one key
port, secs = int(sys.argv[1]), float(sys.argv[2])
op = sys.argv[3] if len(sys.argv) > 3 else 'set'
r = redis.Redis(host='127.0.0.1', port=port, socket_timeout=60)
lat = []; n = 0; errs = 0
end = time.time() + secs
t0 = time.time()
while time.time() < end:
    p = r.pipeline(transaction=False)
    for i in range(32):
        if op == 'incr': p.incr('s:pyc:%d' % i)
        elif op == 'incr1': p.incr('s:pyhot')
        else: p.set('s:py:%d' % ((n * 32 + i) % 5000), 'v')
    t = time.time(); res = p.execute(raise_on_error=False); errs += sum(1 for x in res if isinstance(x, Exception)); lat.append((time.time() - t) * 1000); n += 1
el = time.time() - t0
lat.sort()
print('{"op": "%s", "ops_per_s": %d, "batch_p50_ms": %.1f, "batch_p99_ms": %.1f, "batches": %d, "errors": %d}' % (op, n * 32 / el, lat[len(lat)//2], lat[min(len(lat)-1, int(len(lat)*0.99))], n, errs))
