"""Running Twisted code from pytest: the global reactor lives in a background thread.

pytest-twisted is not installed and trial's TestCase does not mix well with pytest
fixtures, so the test suite uses one simple arrangement everywhere:

* The first call to `reactor_thread()` (or the `reactor` fixture below) starts the
  global reactor in a daemon thread, without signal handlers, and keeps it running
  for the rest of the pytest process. It is stopped at interpreter exit.
* Test code stays in the main thread and hands work to the reactor with
  `run_in_reactor(fn, *args, timeout=10)`: `fn` is called in the reactor thread;
  if it returns a Deferred, the helper waits for it. The result (or the exception,
  re-raised in the test) comes back to the test. A Deferred that does not fire in
  `timeout` seconds is cancelled and the test gets `ReactorTimeout`.
* `wait_for(predicate, timeout)` polls a condition (evaluated in the reactor thread)
  until it holds: tests wait for events, never for fixed durations.
* Anything touching reactor state (protocols, LoopingCalls, listeners) must be
  created and torn down through run_in_reactor, never directly from the test thread.

Reuse it from any test module:

    from twisted_helpers import reactor, run_in_reactor, wait_for   # noqa: F401 (fixture)

    def test_something(reactor):           # the fixture only guarantees it runs
        port = run_in_reactor(lambda: reactor.listenTCP(0, factory))
        ...
        run_in_reactor(port.stopListening)

(tests/ has no __init__.py, so pytest puts tests/ itself on sys.path and the module
imports as plain `twisted_helpers`.)

Blocking calls (HTTP requests to a local test server, a real bitcoind's RPC) are
made from the test thread directly; the reactor thread stays free.
"""
import atexit
import queue
import threading
import time

import pytest
from twisted.internet import defer
from twisted.internet import reactor as _reactor

_start_lock = threading.Lock()
_thread = None


class ReactorTimeout(AssertionError):
    """A call handed to the reactor did not finish in time."""


def reactor_thread():
    """Start the global reactor in a daemon thread (once per process) and return it."""
    global _thread
    with _start_lock:
        if _thread is None:
            _thread = threading.Thread(target=_reactor.run, kwargs={'installSignalHandlers': False},
                                       name='twisted-reactor', daemon=True)
            _thread.start()
            atexit.register(_stop_reactor)
            _wait_until_running()
    return _reactor


def _wait_until_running():
    started = threading.Event()
    _reactor.callFromThread(started.set)
    if not started.wait(10):
        raise ReactorTimeout('the reactor thread did not start')


def _stop_reactor():
    if _reactor.running:
        _reactor.callFromThread(_reactor.stop)
        if _thread is not None:
            _thread.join(5)


def in_reactor_thread():
    return _thread is not None and threading.current_thread() is _thread


def run_in_reactor(fn, *args, timeout=10, **kwargs):
    """Call fn(*args, **kwargs) in the reactor thread; wait for its (Deferred) result."""
    reactor_thread()
    if in_reactor_thread():
        raise RuntimeError('run_in_reactor called from the reactor thread (it would deadlock)')
    answers = queue.Queue()
    holder = {}

    def start():
        try:
            d = defer.maybeDeferred(fn, *args, **kwargs)
        except BaseException as e:  # maybeDeferred only lets BaseExceptions through
            answers.put((False, e))
            return
        holder['deferred'] = d
        d.addCallbacks(lambda value: answers.put((True, value)),
                       lambda failure: answers.put((False, failure.value)))

    _reactor.callFromThread(start)
    try:
        ok, value = answers.get(timeout=timeout)
    except queue.Empty:
        _reactor.callFromThread(lambda: holder.get('deferred') and holder['deferred'].cancel())
        raise ReactorTimeout('%r did not finish within %s s' % (fn, timeout)) from None
    if not ok:
        raise value
    return value


def wait_for(predicate, timeout=10, interval=0.01, message=None):
    """Poll predicate() in the reactor thread until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = run_in_reactor(predicate, timeout=timeout)
        if value:
            return value
        if time.monotonic() > deadline:
            raise ReactorTimeout(message or 'condition %r not met within %s s' % (predicate, timeout))
        time.sleep(interval)


def sleep_in_reactor(seconds):
    """A Deferred firing after `seconds` (for use inside functions run in the reactor)."""
    from twisted.internet import task
    return task.deferLater(_reactor, seconds, lambda: None)


@pytest.fixture(scope='session')
def reactor():
    """The running global reactor (started in its own thread)."""
    return reactor_thread()
