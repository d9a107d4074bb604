/* What the two files of p2pool.sim._clock share: the clock's structures (_clock.c) and the types the
 * module exports, so that the links (_links.c) queue their deliveries on the clock directly. */
#ifndef P2POOL_SIM_CLOCK_H
#define P2POOL_SIM_CLOCK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    double when;
    uint64_t seq;
    PyObject *target;   /* a DelayedCall, or the function of a deliver_at entry */
    PyObject *arg;      /* NULL for a DelayedCall; the one argument of a deliver_at call */
} Entry;

typedef struct {
    Entry *items;
    Py_ssize_t size, capacity;
} Heap;

typedef struct {
    PyObject_HEAD
    double now;
    Py_ssize_t pending;     /* calls queued and neither run nor cancelled */
    Py_ssize_t executed;    /* calls run */
    double limit;           /* the entries before this time are in `heap`, the others in `later` */
    uint64_t seq;
    Heap heap, later;
} Clock;

typedef struct {
    PyObject_HEAD
    Clock *clock;
    double time, queued_time;
    PyObject *func, *args, *kw;     /* released once the call has run or was cancelled; kw may be NULL */
    char called, cancelled;
} Call;

/* queues target(arg) at `when` (a DelayedCall when arg is NULL); takes new references; -1 on error */
int sim_queue(Clock *clock, double when, PyObject *target, PyObject *arg);

extern PyTypeObject ClockType, InboxType, UplinkType, LinkType;

#endif
