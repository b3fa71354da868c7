//! Dot products and row combinations on contiguous slices, compiled for the vector
//! extensions the CPU has: the default x86-64 target has only SSE2, and a plain iterator sum
//! cannot vectorise (floating-point addition is not reassociated), so these keep eight
//! partial sums. They carry the per-atom contractions of kernel models with their sparse
//! points and of force slopes with density derivatives; ndarray's products either stay
//! scalar for these shapes or repack the matrix at every call.

use multiversion::multiversion;

/// a . b over the common length.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let split = n - n % 8;
    let mut acc = [0.0; 8];
    for (x, y) in a[..split].chunks_exact(8).zip(b[..split].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let rest: f64 = a[split..].iter().zip(&b[split..]).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + rest
}

/// out[m] = x_m . p for the rows x_m of the row-major `x` (rows of p's length).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn row_dots(x: &[f64], p: &[f64], out: &mut [f64]) {
    if p.is_empty() {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(x.chunks_exact(p.len())) {
        *o = dot(row, p);
    }
}

/// out += sum_m w[m] x_m for the rows x_m of the row-major `x` (rows of out's length).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn rows_combination(x: &[f64], w: &[f64], out: &mut [f64]) {
    let n = out.len();
    if n == 0 {
        return;
    }
    for (row, &wm) in x.chunks_exact(n).zip(w) {
        for (o, r) in out.iter_mut().zip(row) {
            *o += wm * r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_with_plain_sums() {
        let x: Vec<f64> = (0..3 * 19).map(|k| ((k * 7) % 11) as f64 - 5.0).collect();
        let p: Vec<f64> = (0..19).map(|k| 0.5 * k as f64 - 3.0).collect();
        let mut out = vec![0.0; 3];
        row_dots(&x, &p, &mut out);
        for (m, o) in out.iter().enumerate() {
            let plain: f64 = x[19 * m..19 * (m + 1)]
                .iter()
                .zip(&p)
                .map(|(a, b)| a * b)
                .sum();
            assert!((o - plain).abs() < 1e-12, "{o} vs {plain}");
        }
        let w = [0.5, -2.0, 3.0];
        let mut combined = vec![1.0; 19];
        rows_combination(&x, &w, &mut combined);
        for (k, c) in combined.iter().enumerate() {
            let plain = 1.0 + (0..3).map(|m| w[m] * x[19 * m + k]).sum::<f64>();
            assert!((c - plain).abs() < 1e-12);
        }
    }
}
