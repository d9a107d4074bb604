"""Helpers shared by the benchmark modules."""
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(HERE))


def percentile(values, fraction):
    """The value at `fraction` (0..1) of the sorted values, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def measured_once(name, measure, max_age=3600):
    """Run `measure()` once per `bench/run.py` invocation and share its JSON result
    between the figures that come from it (each figure runs in its own process, whose
    parent is run.py)."""
    path = os.path.join(tempfile.gettempdir(), 'p2pool-bench-%s-%d.json' % (name, os.getppid()))
    try:
        with open(path) as f:
            cached = json.load(f)
        if time.time() - cached['time'] < max_age:
            return cached['result']
    except (OSError, ValueError, KeyError):
        pass
    result = measure()
    with open(path, 'w') as f:
        json.dump({'time': time.time(), 'result': result}, f)
    return result


def reactor_in_thread():
    """The global Twisted reactor, running in a daemon thread (started on first use)."""
    import threading
    from twisted.internet import reactor
    if not reactor.running:
        threading.Thread(target=reactor.run, kwargs={'installSignalHandlers': False}, daemon=True).start()
        while not reactor.running:
            time.sleep(0.01)
    return reactor


def call_in_reactor(fn, *args, **kwargs):
    """Run fn in the reactor thread and wait for its result (or its Deferred's)."""
    from twisted.internet.threads import blockingCallFromThread
    return blockingCallFromThread(reactor_in_thread(), fn, *args, **kwargs)


def cached_wires(path, mine):
    """Wire bytes of a benchmark chain cached at `path` (VarStr records); `mine()` makes the shares once."""
    from p2pool.bitcoin.serialize import VarStr
    if os.path.exists(path):
        with open(path, 'rb') as file:
            blob = file.read()
        wires, pos = [], 0
        while pos < len(blob):
            wire, pos = VarStr.read(blob, pos)
            wires.append(wire)
        return wires
    wires = [share.to_wire() for share in mine()]
    with open(path + '.tmp', 'wb') as file:
        file.write(b''.join(VarStr.pack(wire) for wire in wires))
    os.replace(path + '.tmp', path)
    return wires
