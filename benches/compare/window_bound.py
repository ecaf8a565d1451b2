#!/usr/bin/env python3
"""The best speedup an ordered window of W items allows for the harness's skew mix
(benches/compare/work.c: 90% 1 µs, 9% 10 µs, 1% 1 ms, the class picked by splitmix64 of
the item), with hand-offs that cost nothing: two workers take items one at a time in
order, an item may start only while it is fewer than W past the first one not yet
finished, and results are handed back the moment they are ready. Anything a pool loses
beyond this is its own (or its machine's).

    python3 benches/compare/window_bound.py [N] [WORKERS] [WINDOW ...]
    python3 benches/compare/window_bound.py 20000 2 128 256 1024 4096
"""
import heapq
import sys

MASK = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def cost_ns(item):
    r = mix(item) % 100
    return 1000 if r < 90 else 10000 if r < 99 else 1000000


def bound(n, workers, window):
    cost = [cost_ns(i + 1) for i in range(n)]  # the harness's items are 1..n
    done = [False] * n
    head = 0  # first item not finished: everything before it is handed back
    started = 0
    now = 0
    running = []  # (finish time, item)
    free = workers
    while head < n:
        while free and started < n and started < head + window:
            heapq.heappush(running, (now + cost[started], started))
            started += 1
            free -= 1
        now, item = heapq.heappop(running)
        free += 1
        done[item] = True
        while head < n and done[head]:
            head += 1
    return sum(cost) / now


def main():
    args = [int(a) for a in sys.argv[1:]]
    n = args[0] if args else 20000
    workers = args[1] if len(args) > 1 else 2
    windows = args[2:] or [128, 256, 1024, 4096]
    for w in windows:
        print(f"n {n}, {workers} workers, window {w}: at most {bound(n, workers, w):.3f}x")


if __name__ == "__main__":
    main()
