#!/usr/bin/env python3
"""Read `perf script -F cpu,time,event,trace` output of sched:sched_switch and
sched:sched_wakeup events recorded on every CPU (-a) around one harness run, and print
how the CPUs spent the run:

  idle       time each CPU ran its idle task
  stacked    time a pool thread was runnable but not running (woken, or preempted)
             while some CPU was idle
  wake-ups   per kind of thread, how many times it was woken and how long each waited
             from the wake-up to running (the hand-off's latency)
  ran        time each thread ran (by name: the harness's thread, which submits and
             consumes, the workers, the feeder)

Stacked time is the scheduler's share of a loss: work was ready, a CPU was free, and
the two were not brought together. Used by scripts/sched_trace.sh.
"""
import re
import sys

SWITCH = re.compile(
    r"\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) "
    r"prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)"
)
WAKEUP = re.compile(r"\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_wakeup:\s+comm=(.*?) pid=(\d+) ")


def read(path):
    """(time, order, kind, cpu, fields...) for each event; a wake-up sorts before a
    switch at the same time."""
    events = []
    for line in open(path):
        m = SWITCH.match(line)
        if m:
            cpu, t, _pcomm, ppid, pstate, ncomm, npid = m.groups()
            events.append((float(t), 1, "switch", int(cpu), int(ppid), pstate, ncomm, int(npid)))
            continue
        m = WAKEUP.match(line)
        if m:
            cpu, t, comm, pid = m.groups()
            events.append((float(t), 0, "wakeup", int(cpu), comm, int(pid)))
    return sorted(events)


def kind(name, prefix):
    """Threads grouped by kind: pmap-0, pmap-1 … count as one."""
    if name.startswith(prefix) and name[len(prefix) :].lstrip("-").isdigit():
        return prefix + "-N"
    return name


def main(path, prefix):
    events = read(path)
    if not any(e[2] == "switch" for e in events):
        sys.exit("no sched_switch events")
    # From the pool's first thread switch to its last: the harness's start-up and the
    # process's exit are not the pool's.
    ours = [i for i, e in enumerate(events) if e[2] == "switch" and e[6].startswith(prefix)]
    if not ours:
        sys.exit(f"no {prefix}* thread ran")
    events = events[ours[0] : ours[-1] + 1]
    names = {}
    idle_since = {}  # cpu -> when its idle task started
    idle_total = {}
    waiting = {}  # pid of a pool thread -> since when it is runnable and not running
    woken = {}  # pid -> (name, when woken)
    latencies = {}  # kind -> [wake-to-run seconds]
    stacked = 0.0
    running = {}  # cpu -> (pid, since)
    ran = {}  # thread name -> seconds
    last_t = events[0][0]
    for e in events:
        t = e[0]
        # Credit the interval since the last event: pool threads waiting while a CPU idled.
        if idle_since and waiting:
            stacked += (t - last_t) * len(waiting)
        last_t = t
        if e[2] == "wakeup":
            _, _, _, _cpu, comm, pid = e
            names.setdefault(pid, comm)
            woken[pid] = (comm, t)
            if comm.startswith(prefix):
                waiting[pid] = t
            continue
        _, _, _, cpu, ppid, pstate, ncomm, npid = e
        if cpu in running:
            pid, since = running[cpu]
            if pid != 0:
                name = names.get(pid, str(pid))
                ran[name] = ran.get(name, 0.0) + t - since
        running[cpu] = (npid, t)
        if ppid == 0 and cpu in idle_since:
            idle_total[cpu] = idle_total.get(cpu, 0.0) + t - idle_since.pop(cpu)
        if ppid != 0 and pstate.startswith("R") and names.get(ppid, "").startswith(prefix):
            waiting[ppid] = t
        names[npid] = ncomm
        waiting.pop(npid, None)
        if npid in woken:
            comm, since = woken.pop(npid)
            latencies.setdefault(kind(comm, prefix), []).append(t - since)
        if npid == 0:
            idle_since[cpu] = t
    span = events[-1][0] - events[0][0]
    print(f"traced {span * 1e3:.1f} ms")
    for cpu in sorted(set(e[3] for e in events if e[2] == "switch")):
        print(f"cpu {cpu}: idle {idle_total.get(cpu, 0.0) * 1e3:.1f} ms")
    print(f"stacked: {prefix}* threads runnable, not running, while a CPU idled: {stacked * 1e3:.1f} ms")
    for name, lat in sorted(latencies.items(), key=lambda kv: -sum(kv[1])):
        if len(lat) < 5:
            continue
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
        print(
            f"wake-ups {name}: {len(lat)}, waiting {sum(lat) * 1e3:.2f} ms in all; "
            f"p50 {p(0.5):.0f} us, p90 {p(0.9):.0f} us, max {lat[-1] * 1e6:.0f} us"
        )
    busiest = sorted(ran.items(), key=lambda kv: -kv[1])[:6]
    print("ran: " + ", ".join(f"{name} {secs * 1e3:.1f} ms" for name, secs in busiest))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "pmap")
