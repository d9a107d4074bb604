/* The per-payee amounts of the gentx outputs in C: an optional accelerator of
 * p2pool.sharechain.outputs.payee_outputs (the pure-Python code there is the fallback and the reference).
 *
 * pack_tx_outs writes the tx_outs of the paid rows into one bytes object (no per-payee Python objects).
 *
 * Why: check_share computes numerator * weight // denominator for every payee of every share of a
 * syncing chain (500 to 4000 payees), and building those rows is the largest block of Python work
 * left in the check. Here each amount is that exact floor division, done in unsigned 128-bit integers.
 * Consensus code must be exact, so whatever does not fit (a weight of 64 bits or more, a product of
 * 128 bits or more, a quotient of 64 bits or more, a weight that is not a non-negative int) is not
 * approximated: the function answers None and the caller runs the Python code instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;

/* amount_rows(previous, weights, numerator, denominator_hi, denominator_lo)
 * previous: list of tuples (_, key, packed script, struct code); weights: dict key -> int.
 * Returns [(numerator * weights[key] // denominator, key, packed script, struct code)] in the order
 * of `previous`, or None when a key is not in `weights` or a value does not fit (see above). */
static PyObject *amount_rows(PyObject *self, PyObject *args) {
    PyObject *previous, *weights;
    unsigned long long numerator, denominator_hi, denominator_lo;
    if (!PyArg_ParseTuple(args, "O!O!KKK", &PyList_Type, &previous, &PyDict_Type, &weights, &numerator,
                          &denominator_hi, &denominator_lo))
        return NULL;
    u128 denominator = ((u128)denominator_hi << 64) | denominator_lo;
    if (denominator == 0) {
        PyErr_SetString(PyExc_ZeroDivisionError, "denominator is zero");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(previous);
    PyObject *rows = PyList_New(count);
    if (rows == NULL)
        return NULL;
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *row = PyList_GET_ITEM(previous, index);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 4)
            goto not_here;
        PyObject *key = PyTuple_GET_ITEM(row, 1);
        PyObject *weight_object = PyDict_GetItemWithError(weights, key);   /* borrowed */
        if (weight_object == NULL) {
            if (PyErr_Occurred())
                goto failed;
            goto not_here;      /* a payee has left the window: the caller filters in Python */
        }
        if (!PyLong_CheckExact(weight_object))
            goto not_here;
        unsigned long long weight = PyLong_AsUnsignedLongLong(weight_object);
        if (weight == (unsigned long long)-1 && PyErr_Occurred()) {     /* negative, or 64 bits or more */
            PyErr_Clear();
            goto not_here;
        }
        u128 product;
        if (__builtin_mul_overflow((u128)numerator, (u128)weight, &product))
            goto not_here;
        u128 quotient = product / denominator;
        if (quotient >> 64)
            goto not_here;
        PyObject *amount = PyLong_FromUnsignedLongLong((unsigned long long)quotient);
        if (amount == NULL)
            goto failed;
        PyObject *new_row = PyTuple_New(4);
        if (new_row == NULL) {
            Py_DECREF(amount);
            goto failed;
        }
        PyTuple_SET_ITEM(new_row, 0, amount);
        for (Py_ssize_t field = 1; field < 4; field++) {
            PyObject *item = PyTuple_GET_ITEM(row, field);
            Py_INCREF(item);
            PyTuple_SET_ITEM(new_row, field, item);
        }
        PyList_SET_ITEM(rows, index, new_row);
    }
    return rows;
not_here:
    Py_DECREF(rows);
    Py_RETURN_NONE;
failed:
    Py_DECREF(rows);
    return NULL;
}
#endif

/* pack_tx_outs(rows, start) -> the tx_outs of rows[start:] (u64 little-endian amount, then the packed script
 * as it is), or None when a row is not (int below 2**64, _, bytes, _): then the caller packs them in Python. */
static PyObject *pack_tx_outs(PyObject *self, PyObject *args) {
    PyObject *rows;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &rows, &start))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(rows), size = 0;
    if (start < 0 || start > count)
        Py_RETURN_NONE;
    for (Py_ssize_t index = start; index < count; index++) {
        PyObject *row = PyList_GET_ITEM(rows, index);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 4 || !PyLong_CheckExact(PyTuple_GET_ITEM(row, 0))
                || !PyBytes_CheckExact(PyTuple_GET_ITEM(row, 2)))
            Py_RETURN_NONE;
        size += 8 + PyBytes_GET_SIZE(PyTuple_GET_ITEM(row, 2));
    }
    PyObject *packed = PyBytes_FromStringAndSize(NULL, size);
    if (packed == NULL)
        return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(packed);
    for (Py_ssize_t index = start; index < count; index++) {
        PyObject *row = PyList_GET_ITEM(rows, index);
        unsigned long long amount = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 0));
        if (amount == (unsigned long long)-1 && PyErr_Occurred()) {     /* negative, or 64 bits or more */
            PyErr_Clear();
            Py_DECREF(packed);
            Py_RETURN_NONE;
        }
        for (int byte = 0; byte < 8; byte++)
            *out++ = (unsigned char)(amount >> (8 * byte));
        PyObject *script = PyTuple_GET_ITEM(row, 2);
        memcpy(out, PyBytes_AS_STRING(script), (size_t)PyBytes_GET_SIZE(script));
        out += PyBytes_GET_SIZE(script);
    }
    return packed;
}

static PyMethodDef METHODS[] = {
    {"pack_tx_outs", pack_tx_outs, METH_VARARGS, "pack_tx_outs(rows, start) -> bytes or None"},
#ifdef __SIZEOF_INT128__
    {"amount_rows", amount_rows, METH_VARARGS,
     "amount_rows(previous, weights, numerator, denominator_hi, denominator_lo) -> rows or None"},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "p2pool.sharechain._outputs",
    "Exact per-payee amounts of the gentx outputs (optional accelerator of p2pool.sharechain.outputs).",
    -1, METHODS,
};

PyMODINIT_FUNC PyInit__outputs(void) {
    return PyModule_Create(&MODULE);
}
