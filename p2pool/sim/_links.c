/* The two ends of a simulated connection in C, part of p2pool.sim._clock (p2pool/sim/links.py has their
 * Python reference, PyLink, PyInbox and PyUplink): Link.write puts a write on the sender's Uplink and
 * queues its arrival on the clock, Inbox hands it to the receiving protocol, so the bytes of a message
 * pass from one node's PeerConnection to the other's through no Python frame of the simulator.
 */
#include "_clock.h"

/* --- Inbox ------------------------------------------------------------------------------------ */

/* The receiving end of one direction of a simulated connection (p2pool/sim/links.py): called with the
 * bytes that arrive, it hands them to `receiver` (the protocol's dataReceived) unless the endpoint was
 * closed meanwhile. The links queue it with deliver_at, so a delivery costs no Python frame of ours. */
typedef struct {
    PyObject_HEAD
    PyObject *receiver;     /* None until the endpoint has its protocol */
    char closed;
    vectorcallfunc vectorcall;
} Inbox;

static PyObject *inbox_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Inbox *self = (Inbox *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "an inbox takes the bytes that arrive");
        return NULL;
    }
    if (self->closed || self->receiver == Py_None)
        Py_RETURN_NONE;
    PyObject *receiver = Py_NewRef(self->receiver);     /* dataReceived may close and detach us */
    PyObject *result = PyObject_CallOneArg(receiver, args[0]);
    Py_DECREF(receiver);
    return result;
}

static PyObject *inbox_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (!PyArg_ParseTuple(args, ":Inbox") || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        return NULL;
    }
    Inbox *self = (Inbox *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->receiver = Py_NewRef(Py_None);
    self->closed = 0;
    self->vectorcall = inbox_vectorcall;
    return (PyObject *)self;
}

static int inbox_traverse(Inbox *self, visitproc visit, void *arg) {
    Py_VISIT(self->receiver);
    return 0;
}

static int inbox_clear(Inbox *self) {
    Py_CLEAR(self->receiver);
    return 0;
}

static void inbox_dealloc(Inbox *self) {
    PyObject_GC_UnTrack(self);
    inbox_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *inbox_get_receiver(Inbox *self, void *closure) {
    return Py_NewRef(self->receiver != NULL ? self->receiver : Py_None);
}

static int inbox_set_receiver(Inbox *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the receiver cannot be deleted (set None)");
        return -1;
    }
    Py_XSETREF(self->receiver, Py_NewRef(value));
    return 0;
}

static PyMemberDef inbox_members[] = {
    {"closed", T_BOOL, offsetof(Inbox, closed), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef inbox_getset[] = {
    {"receiver", (getter)inbox_get_receiver, (setter)inbox_set_receiver, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject InboxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "p2pool.sim._clock.Inbox",
    .tp_doc = "inbox(data): receiver(data) unless closed (p2pool/sim/links.py).",
    .tp_basicsize = sizeof(Inbox),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = inbox_new,
    .tp_dealloc = (destructor)inbox_dealloc,
    .tp_traverse = (traverseproc)inbox_traverse,
    .tp_clear = (inquiry)inbox_clear,
    .tp_vectorcall_offset = offsetof(Inbox, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_members = inbox_members,
    .tp_getset = inbox_getset,
};

/* --- Uplink and Link ---------------------------------------------------------------------------- */

/* A host's uplink: when it is free to send the next byte, and how many bytes went through it. */
typedef struct {
    PyObject_HEAD
    double free_at;
    long long bytes_sent;
} Uplink;

static PyMemberDef uplink_members[] = {
    {"free_at", T_DOUBLE, offsetof(Uplink, free_at), 0, NULL},
    {"bytes_sent", T_LONGLONG, offsetof(Uplink, bytes_sent), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject UplinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "p2pool.sim._clock.Uplink",
    .tp_doc = "A host's uplink: free_at (when it can send again), bytes_sent.",
    .tp_basicsize = sizeof(Uplink),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_members = uplink_members,
};

/* The sending half of one direction of a connection (p2pool/sim/links.py, PyLink is the reference):
 * write(data) puts the bytes on the host's uplink after what it is sending already, and queues their
 * arrival at the other end's inbox one-way delay later (a lost write one retransmission timeout
 * later), never before an earlier write's (TCP does not reorder). */
typedef struct {
    PyObject_HEAD
    Clock *clock;
    Uplink *uplink;
    double one_way, bandwidth, last_arrival;
    PyObject *draw_loss;    /* () -> whether this write is retransmitted; None on lossless links */
    PyObject *inbox;        /* the other end's inbox; None while there is none */
    char closed;
} Link;

static const double MIN_RTO = 0.2;

static PyObject *link_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"clock", "uplink", "one_way", "bandwidth", "draw_loss", NULL};
    PyObject *clock, *uplink, *draw_loss;
    double one_way, bandwidth;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!ddO", names, &ClockType, &clock, &UplinkType, &uplink,
                                     &one_way, &bandwidth, &draw_loss))
        return NULL;
    Link *self = (Link *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->clock = (Clock *)Py_NewRef(clock);
    self->uplink = (Uplink *)Py_NewRef(uplink);
    self->one_way = one_way;
    self->bandwidth = bandwidth;
    self->last_arrival = 0.0;
    self->draw_loss = Py_NewRef(draw_loss);
    self->inbox = Py_NewRef(Py_None);
    self->closed = 0;
    return (PyObject *)self;
}

static int link_traverse(Link *self, visitproc visit, void *arg) {
    Py_VISIT(self->clock);
    Py_VISIT(self->uplink);
    Py_VISIT(self->draw_loss);
    Py_VISIT(self->inbox);
    return 0;
}

static int link_clear(Link *self) {
    Py_CLEAR(self->clock);
    Py_CLEAR(self->uplink);
    Py_CLEAR(self->draw_loss);
    Py_CLEAR(self->inbox);
    return 0;
}

static void link_dealloc(Link *self) {
    PyObject_GC_UnTrack(self);
    link_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *link_write(Link *self, PyObject *data) {
    if (self->closed || self->inbox == NULL || self->inbox == Py_None || self->clock == NULL)
        Py_RETURN_NONE;
    Py_ssize_t size = PyObject_Length(data);
    if (size < 0)
        return NULL;
    Clock *clock = self->clock;
    Uplink *uplink = self->uplink;
    uplink->bytes_sent += size;
    double now = clock->now, start = uplink->free_at;
    if (start < now)
        start = now;
    double sent = uplink->free_at = start + (double)size / self->bandwidth;
    double arrival;
    int lost = 0;
    if (self->draw_loss != Py_None) {
        PyObject *drawn = PyObject_CallNoArgs(self->draw_loss);
        if (drawn == NULL)
            return NULL;
        lost = PyObject_IsTrue(drawn);
        Py_DECREF(drawn);
        if (lost < 0)
            return NULL;
    }
    if (lost) {
        double timeout = 4 * self->one_way;
        arrival = sent + (self->one_way + (timeout > MIN_RTO ? timeout : MIN_RTO));
    } else {
        arrival = sent + self->one_way;
    }
    if (arrival < self->last_arrival)
        arrival = self->last_arrival;
    self->last_arrival = arrival;
    if (sim_queue(clock, arrival < clock->now ? clock->now : arrival, self->inbox, data) < 0)
        return NULL;
    clock->pending++;
    Py_RETURN_NONE;
}

static PyObject *link_get_inbox(Link *self, void *closure) {
    return Py_NewRef(self->inbox != NULL ? self->inbox : Py_None);
}

static int link_set_inbox(Link *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the inbox cannot be deleted (set None)");
        return -1;
    }
    Py_XSETREF(self->inbox, Py_NewRef(value));
    return 0;
}

static PyMethodDef link_methods[] = {
    {"write", (PyCFunction)link_write, METH_O, "Send `data` to the other end (see the type)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef link_members[] = {
    {"closed", T_BOOL, offsetof(Link, closed), 0, NULL},
    {"last_arrival", T_DOUBLE, offsetof(Link, last_arrival), READONLY, NULL},
    {"one_way", T_DOUBLE, offsetof(Link, one_way), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef link_getset[] = {
    {"inbox", (getter)link_get_inbox, (setter)link_set_inbox, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject LinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "p2pool.sim._clock.Link",
    .tp_doc = "Link(clock, uplink, one_way, bandwidth, draw_loss): write(data) (p2pool/sim/links.py).",
    .tp_basicsize = sizeof(Link),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = link_new,
    .tp_dealloc = (destructor)link_dealloc,
    .tp_traverse = (traverseproc)link_traverse,
    .tp_clear = (inquiry)link_clear,
    .tp_methods = link_methods,
    .tp_members = link_members,
    .tp_getset = link_getset,
};
