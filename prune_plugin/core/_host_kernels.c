/* Threshold mode's per-step pass over float32 weights in host memory, fused into one loop.
 *
 * The numpy path (prune_plugin/core/kernels.py) makes four passes per cache-sized slice
 * (abs, compare, and, multiply); this makes one, which is what a step's memory traffic allows.
 * Results are bit-identical to that path: pruned weights are multiplied by 0 (so -w gives -0.0
 * and NaN stays NaN, as ``np.multiply(w, keep)`` does) and NaN weights are pruned (a NaN
 * magnitude is never >= the threshold). The GIL is released while the loop runs, so a model's
 * tensors can be spread over threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* x86-64 with GCC/clang on ELF: an AVX2 copy of each loop beside the baseline one, chosen when
 * the module loads by what the CPU has (about 1.3x faster here); elsewhere the baseline only. */
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define HOST_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define HOST_LOOP
#endif

/* ``restrict``: the weights and the mask never overlap (take_pair checks the sizes; they are
 * two tensors), which lets the compiler vectorize both loops. A bool is stored as 0 or 1. */
HOST_LOOP static void
narrow_and_zero_loop(float *restrict w, unsigned char *restrict k, Py_ssize_t n, float threshold)
{
    for (Py_ssize_t i = 0; i < n; ++i) {
        float value = w[i];
        unsigned char kept = k[i] & (unsigned char)(fabsf(value) >= threshold);
        k[i] = kept;
        w[i] = value * (float)kept;
    }
}

HOST_LOOP static void
zero_pruned_loop(float *restrict w, const unsigned char *restrict k, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; ++i)
        w[i] = w[i] * (float)k[i];
}

static int
take_pair(PyObject *args, Py_buffer *weight, Py_buffer *keep, float *threshold, int with_threshold)
{
    int parsed = with_threshold
        ? PyArg_ParseTuple(args, "w*w*f", weight, keep, threshold)
        : PyArg_ParseTuple(args, "w*w*", weight, keep);
    if (!parsed)
        return 0;
    if (weight->len != keep->len * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "weight has %zd bytes, keep %zd: expected float32 weights "
                     "and one bool per weight", weight->len, keep->len);
        PyBuffer_Release(weight);
        PyBuffer_Release(keep);
        return 0;
    }
    return 1;
}

static PyObject *
narrow_and_zero(PyObject *self, PyObject *args)
{
    Py_buffer weight, keep;
    float threshold;
    if (!take_pair(args, &weight, &keep, &threshold, 1))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    narrow_and_zero_loop((float *)weight.buf, (unsigned char *)keep.buf, keep.len, threshold);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&weight);
    PyBuffer_Release(&keep);
    Py_RETURN_NONE;
}

static PyObject *
zero_pruned(PyObject *self, PyObject *args)
{
    Py_buffer weight, keep;
    if (!take_pair(args, &weight, &keep, NULL, 0))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    zero_pruned_loop((float *)weight.buf, (const unsigned char *)keep.buf, keep.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&weight);
    PyBuffer_Release(&keep);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"narrow_and_zero", narrow_and_zero, METH_VARARGS,
     "narrow_and_zero(weight, keep, threshold): keep &= |weight| >= threshold; weight *= keep "
     "(float32 and bool buffers of the same length, changed in place)."},
    {"zero_pruned", zero_pruned, METH_VARARGS,
     "zero_pruned(weight, keep): weight *= keep (float32 and bool buffers, in place)."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_host_kernels",
    "Fused host loops for prune_plugin.core.kernels (optional: the numpy path is the fallback).",
    -1, methods
};

PyMODINIT_FUNC
PyInit__host_kernels(void)
{
    return PyModule_Create(&module);
}
