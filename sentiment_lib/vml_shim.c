/* The regression snapshots' portable elementwise math: torch computes exp, log, tanh, sqrt, erf, ... of a float
 * tensor with MKL's vector math (vmsExp, vmsSqrt, ...), whose code path, and so whose last bits, depend on the
 * CPU (its sqrt is not even correctly rounded: about 1 result in 6 differs from sqrtf's), and no MKL setting
 * changes that. Preloaded into the snapshots' kernels (sentiment_lib.pipeline.portable_environment), these
 * definitions take the place of MKL's: the same loop over the C library's functions on every x86-64 CPU.
 * Built by sentiment_lib.pipeline.math_shim with the system's C compiler. */
#include <math.h>

typedef int mkl_int;           /* MKL_INT in torch's LP64 MKL */
typedef long long mkl_int64;   /* the mode argument (accuracy, error handling): ignored */

#define SHIM(name, sfun, dfun)                                                                        \
    void vms##name(const mkl_int n, const float *a, float *r, mkl_int64 mode) {                       \
        (void)mode; for (mkl_int i = 0; i < n; i++) r[i] = sfun(a[i]); }                              \
    void vs##name(const mkl_int n, const float *a, float *r) {                                        \
        for (mkl_int i = 0; i < n; i++) r[i] = sfun(a[i]); }                                          \
    void vmd##name(const mkl_int n, const double *a, double *r, mkl_int64 mode) {                     \
        (void)mode; for (mkl_int i = 0; i < n; i++) r[i] = dfun(a[i]); }                             \
    void vd##name(const mkl_int n, const double *a, double *r) {                                      \
        for (mkl_int i = 0; i < n; i++) r[i] = dfun(a[i]); }

SHIM(Sqrt, sqrtf, sqrt)
SHIM(Exp, expf, exp)
SHIM(Expm1, expm1f, expm1)
SHIM(Ln, logf, log)
SHIM(Log10, log10f, log10)
SHIM(Log2, log2f, log2)
SHIM(Log1p, log1pf, log1p)
SHIM(Tanh, tanhf, tanh)
SHIM(Erf, erff, erf)
SHIM(Erfc, erfcf, erfc)
SHIM(Sin, sinf, sin)
SHIM(Cos, cosf, cos)
SHIM(Tan, tanf, tan)
SHIM(Asin, asinf, asin)
SHIM(Acos, acosf, acos)
SHIM(Atan, atanf, atan)
SHIM(Trunc, truncf, trunc)
