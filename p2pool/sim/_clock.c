/* The simulator's virtual clock in C: an optional accelerator of p2pool.sim.clock (the pure-Python
 * PyVirtualClock and PyDelayedCall there are the fallback and the reference; tests/test_sim_clock.py
 * runs both on the same random schedules and compares what ran when).
 *
 * Why: every simulated event (half a million byte deliveries and timers per 100 nodes x 2 h) goes
 * through callLater/deliver_at and the run loop; in Python the loop, its heap tuples and its calls
 * are an eighth of the run. The algorithm is the Python one, step for step, so that every call runs
 * at the same time and in the same order:
 *
 * - entries (time, sequence, DelayedCall) or (time, sequence, function, argument); sequence numbers
 *   are unique, so (time, sequence) is a total order and any heap pops them in the same order;
 * - only entries due before `limit` (the next whole second) are in `heap`; the others wait in
 *   `later` and move to `heap` when their second is opened (the heap is empty then), the dead
 *   ones (called, cancelled, or superseded by an earlier re-queue) dropped at that moment exactly
 *   as the Python buckets drop them. `later` is a heap too: its entries of the smallest second are
 *   on top, and the order in which an opened second's entries enter `heap` does not matter;
 * - a reset to a later time only records the time; the stale entry re-queues the call (with a new
 *   sequence number) when it comes up. A reset to an earlier time re-queues at once.
 * Floating-point arithmetic is the same IEEE double arithmetic (no fused multiply-add, setup.py).
 *
 * The links' two ends, in the same module, are _links.c; what both files share is _clock.h.
 */
#include "_clock.h"

static PyObject *already_done = NULL;     /* p2pool.sim.clock.AlreadyDone (configure) */
static PyObject *report_failure = NULL;   /* p2pool.sim.clock's report_failure(function, exception) */

static inline int entry_less(const Entry *a, const Entry *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static int heap_push(Heap *heap, Entry entry) {
    if (heap->size == heap->capacity) {
        Py_ssize_t capacity = heap->capacity ? heap->capacity * 2 : 256;
        Entry *items = PyMem_Realloc(heap->items, (size_t)capacity * sizeof(Entry));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        heap->items = items;
        heap->capacity = capacity;
    }
    Entry *items = heap->items;
    Py_ssize_t position = heap->size++;
    while (position > 0) {
        Py_ssize_t parent = (position - 1) >> 1;
        if (!entry_less(&entry, &items[parent]))
            break;
        items[position] = items[parent];
        position = parent;
    }
    items[position] = entry;
    return 0;
}

/* Removes and returns the smallest entry (the heap must not be empty); the caller owns its references. */
static Entry heap_pop(Heap *heap) {
    Entry *items = heap->items;
    Entry top = items[0];
    Entry last = items[--heap->size];
    Py_ssize_t size = heap->size, position = 0;
    if (size == 0)
        return top;
    for (;;) {
        Py_ssize_t child = 2 * position + 1;
        if (child >= size)
            break;
        if (child + 1 < size && entry_less(&items[child + 1], &items[child]))
            child++;
        if (!entry_less(&items[child], &last))
            break;
        items[position] = items[child];
        position = child;
    }
    items[position] = last;
    return top;
}

static void heap_clear(Heap *heap) {
    /* references are dropped after the array is detached: a finalizer may queue calls meanwhile */
    Entry *items = heap->items;
    Py_ssize_t size = heap->size;
    heap->items = NULL;
    heap->size = heap->capacity = 0;
    for (Py_ssize_t index = 0; index < size; index++) {
        Py_DECREF(items[index].target);
        Py_XDECREF(items[index].arg);
    }
    PyMem_Free(items);
}

static int heap_traverse(Heap *heap, visitproc visit, void *arg) {
    for (Py_ssize_t index = 0; index < heap->size; index++) {
        Py_VISIT(heap->items[index].target);
        Py_VISIT(heap->items[index].arg);
    }
    return 0;
}

static PyTypeObject CallType;

/* --- DelayedCall ------------------------------------------------------------------------------ */

static int call_traverse(Call *self, visitproc visit, void *arg) {
    Py_VISIT(self->clock);
    Py_VISIT(self->func);
    Py_VISIT(self->args);
    Py_VISIT(self->kw);
    return 0;
}

static int call_clear(Call *self) {
    Py_CLEAR(self->clock);
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kw);
    return 0;
}

static void call_dealloc(Call *self) {
    PyObject_GC_UnTrack(self);
    call_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

int sim_queue(Clock *clock, double when, PyObject *target, PyObject *arg) {
    /* steals nothing: takes new references to target and arg */
    Entry entry = {when, clock->seq++, target, arg};
    Py_INCREF(target);
    Py_XINCREF(arg);
    if (heap_push(when < clock->limit ? &clock->heap : &clock->later, entry) < 0) {
        Py_DECREF(target);
        Py_XDECREF(arg);
        return -1;
    }
    return 0;
}

static int requeue(Clock *clock, Call *call) {
    call->queued_time = call->time;
    return sim_queue(clock, call->time, (PyObject *)call, NULL);
}

static PyObject *call_active(Call *self, PyObject *unused) {
    return PyBool_FromLong(!(self->called || self->cancelled));
}

static PyObject *call_get_time(Call *self, PyObject *unused) {
    return PyFloat_FromDouble(self->time);
}

static PyObject *call_cancel(Call *self, PyObject *unused) {
    if (self->called || self->cancelled || self->clock == NULL) {
        PyErr_Format(already_done, "call already %s", self->called ? "called" : "cancelled");
        return NULL;
    }
    self->cancelled = 1;
    self->clock->pending--;
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kw);
    Py_RETURN_NONE;
}

static PyObject *reset_to(Call *self, double seconds) {
    if (self->called || self->cancelled || self->clock == NULL) {
        PyErr_SetString(already_done, "call already done");
        return NULL;
    }
    self->time = self->clock->now + seconds;
    if (self->time < self->queued_time && requeue(self->clock, self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *call_reset(Call *self, PyObject *seconds_object) {
    double seconds = PyFloat_AsDouble(seconds_object);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    return reset_to(self, seconds);
}

static PyObject *call_delay(Call *self, PyObject *seconds_object) {
    double seconds = PyFloat_AsDouble(seconds_object);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    if (self->clock == NULL)
        return reset_to(self, seconds);     /* raises AlreadyDone */
    return reset_to(self, self->time - self->clock->now + seconds);
}

static PyObject *call_get_kw(Call *self, void *closure) {
    if (self->kw != NULL)
        return Py_NewRef(self->kw);
    return PyDict_New();
}

static PyMethodDef call_methods[] = {
    {"active", (PyCFunction)call_active, METH_NOARGS, "Whether the call has neither run nor been cancelled."},
    {"getTime", (PyCFunction)call_get_time, METH_NOARGS, "When the call is due."},
    {"cancel", (PyCFunction)call_cancel, METH_NOARGS, "Cancel it (AlreadyDone once it ran or was cancelled)."},
    {"reset", (PyCFunction)call_reset, METH_O, "Due `seconds` from now instead."},
    {"delay", (PyCFunction)call_delay, METH_O, "Due `seconds` later than now planned."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef call_members[] = {
    {"time", T_DOUBLE, offsetof(Call, time), READONLY, NULL},
    {"queued_time", T_DOUBLE, offsetof(Call, queued_time), READONLY, NULL},
    {"called", T_BOOL, offsetof(Call, called), READONLY, NULL},
    {"cancelled", T_BOOL, offsetof(Call, cancelled), READONLY, NULL},
    {"func", T_OBJECT, offsetof(Call, func), READONLY, NULL},
    {"args", T_OBJECT, offsetof(Call, args), READONLY, NULL},
    {"clock", T_OBJECT, offsetof(Call, clock), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef call_getset[] = {
    {"kw", (getter)call_get_kw, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "p2pool.sim._clock.DelayedCall",
    .tp_doc = "A pending call: active(), cancel(), reset(seconds), delay(seconds), getTime().",
    .tp_basicsize = sizeof(Call),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)call_dealloc,
    .tp_traverse = (traverseproc)call_traverse,
    .tp_clear = (inquiry)call_clear,
    .tp_methods = call_methods,
    .tp_members = call_members,
    .tp_getset = call_getset,
};

/* --- VirtualClock ----------------------------------------------------------------------------- */

static int clock_init(Clock *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"start", NULL};
    double start = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|d", names, &start))
        return -1;
    heap_clear(&self->heap);
    heap_clear(&self->later);
    self->now = start;
    self->pending = self->executed = 0;
    self->limit = floor(start) + 1.0;
    self->seq = 0;
    return 0;
}

static int clock_traverse(Clock *self, visitproc visit, void *arg) {
    int failed = heap_traverse(&self->heap, visit, arg);
    return failed ? failed : heap_traverse(&self->later, visit, arg);
}

static int clock_clear(Clock *self) {
    heap_clear(&self->heap);
    heap_clear(&self->later);
    return 0;
}

static void clock_dealloc(Clock *self) {
    PyObject_GC_UnTrack(self);
    clock_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *clock_seconds(Clock *self, PyObject *unused) {
    return PyFloat_FromDouble(self->now);
}

static PyObject *clock_as_function(Clock *self, PyObject *args, PyObject *kwargs) {
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "the clock takes no arguments");
        return NULL;
    }
    return PyFloat_FromDouble(self->now);
}

/* callLater(delay, func, *args, **kw) */
static PyObject *clock_call_later(Clock *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "callLater(delay, func, *args, **kw)");
        return NULL;
    }
    double delay = PyFloat_AsDouble(args[0]);
    if (delay == -1.0 && PyErr_Occurred())
        return NULL;
    double when = delay > 0 ? self->now + delay : self->now;
    Call *call = PyObject_GC_New(Call, &CallType);
    if (call == NULL)
        return NULL;
    call->clock = (Clock *)Py_NewRef(self);
    call->time = call->queued_time = when;
    call->func = Py_NewRef(args[1]);
    call->args = NULL;
    call->kw = NULL;
    call->called = call->cancelled = 0;
    PyObject_GC_Track(call);
    call->args = PyTuple_New(nargs - 2);
    if (call->args == NULL)
        goto failed;
    for (Py_ssize_t index = 2; index < nargs; index++)
        PyTuple_SET_ITEM(call->args, index - 2, Py_NewRef(args[index]));
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (keywords) {
        call->kw = PyDict_New();
        if (call->kw == NULL)
            goto failed;
        for (Py_ssize_t index = 0; index < keywords; index++)
            if (PyDict_SetItem(call->kw, PyTuple_GET_ITEM(kwnames, index), args[nargs + index]) < 0)
                goto failed;
    }
    if (sim_queue(self, when, (PyObject *)call, NULL) < 0)
        goto failed;
    self->pending++;
    return (PyObject *)call;
failed:
    Py_DECREF(call);
    return NULL;
}

/* deliver_at(when, func, arg): func(arg) at `when` (not before now), never cancelled nor reset */
static PyObject *clock_deliver_at(Clock *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "deliver_at(when, func, arg)");
        return NULL;
    }
    double when = PyFloat_AsDouble(args[0]);
    if (when == -1.0 && PyErr_Occurred())
        return NULL;
    if (when < self->now)
        when = self->now;
    if (sim_queue(self, when, args[1], args[2]) < 0)
        return NULL;
    self->pending++;
    Py_RETURN_NONE;
}

static PyObject *clock_requeue(Clock *self, PyObject *call) {
    if (!PyObject_TypeCheck(call, &CallType) || ((Call *)call)->clock != self) {
        PyErr_SetString(PyExc_TypeError, "requeue takes a DelayedCall of this clock");
        return NULL;
    }
    if (requeue(self, (Call *)call) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Moves the earliest second's entries from `later` into the (empty) heap, without the dead calls. */
static int open_next_second(Clock *self) {
    double second = floor(self->later.items[0].when);
    self->limit = second + 1.0;
    while (self->later.size && floor(self->later.items[0].when) == second) {
        Entry entry = heap_pop(&self->later);
        if (entry.arg == NULL) {
            Call *call = (Call *)entry.target;
            if (call->called || call->cancelled || entry.when != call->queued_time) {
                Py_DECREF(entry.target);    /* run_until would skip it */
                continue;
            }
        }
        if (heap_push(&self->heap, entry) < 0) {
            Py_DECREF(entry.target);
            Py_XDECREF(entry.arg);
            return -1;
        }
    }
    return 0;
}

/* After a call raised: an Exception is reported (logged) and the run goes on; anything else
 * (KeyboardInterrupt, SystemExit) ends run_until. Returns 0 to go on, -1 to stop with the error set. */
static int handle_failure(PyObject *function) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    if (report_failure == NULL || !PyErr_GivenExceptionMatches(type, PyExc_Exception)) {
        PyErr_Restore(type, value, traceback);
        return -1;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(report_failure, function, value, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static PyObject *clock_run_until(Clock *self, PyObject *end_object) {
    double end = PyFloat_AsDouble(end_object);
    if (end == -1.0 && PyErr_Occurred())
        return NULL;
    Heap *heap = &self->heap;
    for (;;) {
        if (heap->size == 0) {
            if (self->later.size == 0 || floor(self->later.items[0].when) > end)
                break;
            if (open_next_second(self) < 0)
                return NULL;
            continue;
        }
        if (heap->items[0].when > end)
            break;
        Entry entry = heap_pop(heap);
        PyObject *result;
        if (entry.arg != NULL) {    /* a deliver_at entry */
            self->now = entry.when;
            self->pending--;
            self->executed++;
            result = PyObject_CallOneArg(entry.target, entry.arg);
            Py_DECREF(entry.arg);
            if (result == NULL && handle_failure(entry.target) < 0) {
                Py_DECREF(entry.target);
                return NULL;
            }
            Py_XDECREF(result);
            Py_DECREF(entry.target);
            continue;
        }
        Call *call = (Call *)entry.target;
        if (call->called || call->cancelled || entry.when != call->queued_time) {
            Py_DECREF(call);    /* done already, or an entry left behind by an earlier reset */
            continue;
        }
        if (call->time > entry.when) {   /* reset to a later time while queued: queue it again */
            int failed = requeue(self, call);
            Py_DECREF(call);
            if (failed)
                return NULL;
            continue;
        }
        self->now = entry.when;
        call->called = 1;
        self->pending--;
        self->executed++;
        PyObject *function = call->func, *args = call->args, *kw = call->kw;
        call->func = call->args = call->kw = NULL;    /* this call's references now */
        if (kw == NULL)
            result = PyObject_Vectorcall(function, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), NULL);
        else
            result = PyObject_Call(function, args, kw);
        Py_DECREF(args);
        Py_XDECREF(kw);
        Py_DECREF(call);
        if (result == NULL && handle_failure(function) < 0) {
            Py_DECREF(function);
            return NULL;
        }
        Py_XDECREF(result);
        Py_DECREF(function);
    }
    if (end > self->now)
        self->now = end;
    Py_RETURN_NONE;
}

static PyMethodDef clock_methods[] = {
    {"seconds", (PyCFunction)clock_seconds, METH_NOARGS, "The simulated time."},
    {"callLater", (PyCFunction)(void (*)(void))clock_call_later, METH_FASTCALL | METH_KEYWORDS,
     "func(*args, **kw) after `delay` seconds; returns its DelayedCall."},
    {"deliver_at", (PyCFunction)(void (*)(void))clock_deliver_at, METH_FASTCALL,
     "func(arg) at `when` (not before now); it cannot be cancelled."},
    {"requeue", (PyCFunction)clock_requeue, METH_O, "Queue a DelayedCall again at its time."},
    {"run_until", (PyCFunction)clock_run_until, METH_O, "Run every call due up to `end`, in time order."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef clock_members[] = {
    {"now", T_DOUBLE, offsetof(Clock, now), 0, NULL},
    {"pending", T_PYSSIZET, offsetof(Clock, pending), 0, NULL},
    {"executed", T_PYSSIZET, offsetof(Clock, executed), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject ClockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "p2pool.sim._clock.VirtualClock",
    .tp_doc = "Simulated time; run_until(t) executes every call due up to t in time order (FIFO on ties).",
    .tp_basicsize = sizeof(Clock),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)clock_init,
    .tp_dealloc = (destructor)clock_dealloc,
    .tp_traverse = (traverseproc)clock_traverse,
    .tp_clear = (inquiry)clock_clear,
    .tp_call = (ternaryfunc)clock_as_function,
    .tp_methods = clock_methods,
    .tp_members = clock_members,
};

/* configure(AlreadyDone, report_failure): the exception cancel/reset raise, and the function that
 * logs a failed call (function, exception) */
static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *exception, *reporter;
    if (!PyArg_ParseTuple(args, "OO", &exception, &reporter))
        return NULL;
    Py_XSETREF(already_done, Py_NewRef(exception));
    Py_XSETREF(report_failure, Py_NewRef(reporter));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS, "configure(AlreadyDone, report_failure)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef clock_module = {
    PyModuleDef_HEAD_INIT, "p2pool.sim._clock", "The simulator's virtual clock in C (p2pool/sim/clock.py).",
    -1, module_methods,
};

PyMODINIT_FUNC PyInit__clock(void) {
    if (PyType_Ready(&ClockType) < 0 || PyType_Ready(&CallType) < 0 || PyType_Ready(&InboxType) < 0 ||
            PyType_Ready(&UplinkType) < 0 || PyType_Ready(&LinkType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&clock_module);
    if (module == NULL)
        return NULL;
    if (already_done == NULL)
        already_done = Py_NewRef(PyExc_RuntimeError);
    if (PyModule_AddObjectRef(module, "VirtualClock", (PyObject *)&ClockType) < 0 ||
            PyModule_AddObjectRef(module, "DelayedCall", (PyObject *)&CallType) < 0 ||
            PyModule_AddObjectRef(module, "Inbox", (PyObject *)&InboxType) < 0 ||
            PyModule_AddObjectRef(module, "Uplink", (PyObject *)&UplinkType) < 0 ||
            PyModule_AddObjectRef(module, "Link", (PyObject *)&LinkType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
