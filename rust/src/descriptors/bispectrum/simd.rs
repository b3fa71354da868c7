//! Four f64 lanes, the unit the kernels are written in: AVX2+FMA registers when the CPU has
//! them (chosen once per call at run time, see `atom::run_atom`), else plain arrays that the
//! compiler maps to whatever the baseline target offers.
//!
//! Written by hand because the kernels need only these few operations and `std::simd` is
//! not stable; the explicit form also fixes the order of every floating-point operation, so
//! results never depend on how the compiler vectorizes. `mul_add` is fused on AVX2+FMA and
//! two roundings otherwise: results are bit-identical on one machine for any thread count,
//! and equal to rounding across machines.

/// The lane width every layout in `indices` is padded to.
pub const LANES: usize = 4;

pub trait Simd: Copy {
    type V: Copy;
    fn zero() -> Self::V;
    fn splat(x: f64) -> Self::V;
    /// # Safety
    /// `p..p+4` must be readable.
    unsafe fn load(p: *const f64) -> Self::V;
    /// # Safety
    /// `p..p+4` must be writable.
    unsafe fn store(p: *mut f64, v: Self::V);
    fn add(a: Self::V, b: Self::V) -> Self::V;
    fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// a * b + c
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// c - a * b
    fn neg_mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// The sum of the lanes, ((l0 + l2) + (l1 + l3)).
    fn sum(v: Self::V) -> f64;
    /// The lanes in reverse order.
    fn reverse(v: Self::V) -> Self::V;
}

/// Any CPU: four-element arrays.
#[derive(Debug, Clone, Copy)]
pub struct Portable;

impl Simd for Portable {
    type V = [f64; 4];
    #[inline(always)]
    fn zero() -> Self::V {
        [0.0; 4]
    }
    #[inline(always)]
    fn splat(x: f64) -> Self::V {
        [x; 4]
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self::V {
        // SAFETY: the caller guarantees four readable values
        unsafe { (p as *const [f64; 4]).read_unaligned() }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: Self::V) {
        // SAFETY: the caller guarantees four writable values
        unsafe { (p as *mut [f64; 4]).write_unaligned(v) }
    }
    #[inline(always)]
    fn add(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] + b[k])
    }
    #[inline(always)]
    fn mul(a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] * b[k])
    }
    #[inline(always)]
    fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] * b[k] + c[k])
    }
    #[inline(always)]
    fn neg_mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|k| c[k] - a[k] * b[k])
    }
    #[inline(always)]
    fn sum(v: Self::V) -> f64 {
        (v[0] + v[2]) + (v[1] + v[3])
    }
    #[inline(always)]
    fn reverse(v: Self::V) -> Self::V {
        [v[3], v[2], v[1], v[0]]
    }
}

/// x86-64 with AVX2 and FMA. Its methods may only run inside a function compiled with
/// `#[target_feature(enable = "avx2,fma")]`, into which they are inlined.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Avx2Fma;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Avx2Fma, Simd};
    use std::arch::x86_64::*;

    // SAFETY (all methods): `Avx2Fma` is only used by code that runs after the CPU was found
    // to support AVX2 and FMA (see `atom::run_atom`).
    impl Simd for Avx2Fma {
        type V = __m256d;
        #[inline(always)]
        fn zero() -> Self::V {
            unsafe { _mm256_setzero_pd() }
        }
        #[inline(always)]
        fn splat(x: f64) -> Self::V {
            unsafe { _mm256_set1_pd(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self::V {
            unsafe { _mm256_loadu_pd(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f64, v: Self::V) {
            unsafe { _mm256_storeu_pd(p, v) }
        }
        #[inline(always)]
        fn add(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm256_add_pd(a, b) }
        }
        #[inline(always)]
        fn mul(a: Self::V, b: Self::V) -> Self::V {
            unsafe { _mm256_mul_pd(a, b) }
        }
        #[inline(always)]
        fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
            unsafe { _mm256_fmadd_pd(a, b, c) }
        }
        #[inline(always)]
        fn neg_mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
            unsafe { _mm256_fnmadd_pd(a, b, c) }
        }
        #[inline(always)]
        fn sum(v: Self::V) -> f64 {
            unsafe {
                let lo = _mm256_castpd256_pd128(v);
                let hi = _mm256_extractf128_pd(v, 1);
                // (l0 + l2, l1 + l3), then their sum
                let s = _mm_add_pd(lo, hi);
                _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
            }
        }
        #[inline(always)]
        fn reverse(v: Self::V) -> Self::V {
            unsafe { _mm256_permute4x64_pd::<0x1B>(v) }
        }
    }
}
