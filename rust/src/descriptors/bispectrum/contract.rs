//! The contraction sum over (ma, mb) of conj(X[ma][mb]) Y[ma][mb] for two level-j matrices
//! with the shared symmetry X[j-ma][j-mb] = (-1)^(ma-mb) conj(X[ma][mb]): the sum is real and
//! equals twice the sum over the rows mb < j/2, plus for even j the middle row's left half and
//! half its centre. It is the kernel of B, dB/dr and dE/dr.

use num_complex::Complex64 as C;

/// `x` is a full level (rows of j+1), `y` holds at least the rows mb <= j/2.
#[inline(always)]
pub fn half_dot(j: usize, x: &[C], y: &[C]) -> f64 {
    let n = j + 1;
    let full = n * j.div_ceil(2);
    let mut sum: f64 = x[..full]
        .iter()
        .zip(&y[..full])
        .map(|(a, b)| a.re * b.re + a.im * b.im)
        .sum();
    if j % 2 == 0 {
        let mid = full + j / 2;
        for k in full..mid {
            sum += x[k].re * y[k].re + x[k].im * y[k].im;
        }
        sum += 0.5 * (x[mid].re * y[mid].re + x[mid].im * y[mid].im);
    }
    2.0 * sum
}

/// `half_dot` of each of the three gradient components of `dx` with `y`.
#[inline(always)]
pub fn half_dot3(j: usize, dx: &[[C; 3]], y: &[C]) -> [f64; 3] {
    let n = j + 1;
    let full = n * j.div_ceil(2);
    let mut sum = [0.0; 3];
    let mut add = |g: &[C; 3], b: C, w: f64| {
        for k in 0..3 {
            sum[k] += w * (g[k].re * b.re + g[k].im * b.im);
        }
    };
    for k in 0..full {
        add(&dx[k], y[k], 1.0);
    }
    if j % 2 == 0 {
        let mid = full + j / 2;
        for k in full..mid {
            add(&dx[k], y[k], 1.0);
        }
        add(&dx[mid], y[mid], 0.5);
    }
    sum.map(|s| 2.0 * s)
}
