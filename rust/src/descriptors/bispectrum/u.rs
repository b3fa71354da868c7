//! Stage U: the Wigner U-matrices of one neighbor, and their derivatives (dU/dr).
//!
//! The neighbor at r_ij is mapped to a point on the 3-sphere (Bartok 2010; Thompson et al.
//! 2015, eq. 4): polar angle theta0 = rfac0 * pi * (r - rmin0) / (rcut - rmin0) and the
//! Cayley-Klein parameters a = (z0 - i z) / r0, b = (y - i x) / r0 with z0 = r cot(theta0),
//! r0 = sqrt(r^2 + z0^2). U_j follows from U_{j-1} by the recursion of Varshalovich et al.
//! 4.8.2, computed four columns at a time for the rows mb <= j/2 (half layout, see `indices`)
//! and completed by the symmetry U[j-mb][j-ma] = (-1)^(ma-mb) conj(U[mb][ma]).

use num_complex::Complex64 as C;

use super::indices::Indices;
use super::simd::{Simd, LANES};

/// Cayley-Klein parameters of one neighbor and their gradients with respect to r_ij.
#[derive(Debug, Clone, Copy)]
pub struct CayleyKlein {
    pub a: C,
    pub b: C,
    pub da: [C; 3],
    pub db: [C; 3],
}

impl CayleyKlein {
    /// `rij` in Angstrom, `r` = |rij| > 0, `rcut` the pair cutoff.
    #[inline(always)]
    pub fn new(rij: [f64; 3], r: f64, rcut: f64, rfac0: f64, rmin0: f64) -> Self {
        let [x, y, z] = rij;
        let rscale0 = rfac0 * std::f64::consts::PI / (rcut - rmin0);
        let theta0 = (r - rmin0) * rscale0;
        let z0 = r / theta0.tan();
        // d z0 / d r = cot(theta0) - r rscale0 / sin^2(theta0)
        let dz0dr = z0 / r - rscale0 * (r * r + z0 * z0) / r;
        let r0inv = 1.0 / (r * r + z0 * z0).sqrt();
        let a = C::new(z0 * r0inv, -z * r0inv);
        let b = C::new(y * r0inv, -x * r0inv);
        let dr0invdr = -r0inv.powi(3) * (r + z0 * dz0dr);
        let mut da = [C::new(0.0, 0.0); 3];
        let mut db = [C::new(0.0, 0.0); 3];
        for k in 0..3 {
            let unit = rij[k] / r;
            let dr0inv = dr0invdr * unit;
            da[k] = C::new(dz0dr * unit * r0inv + z0 * dr0inv, -z * dr0inv);
            db[k] = C::new(y * dr0inv, -x * dr0inv);
        }
        da[2].im -= r0inv;
        db[1].re += r0inv;
        db[0].im -= r0inv;
        CayleyKlein { a, b, da, db }
    }
}

/// A complex number splatted across the lanes.
#[derive(Clone, Copy)]
struct Splat<V> {
    re: V,
    im: V,
}

impl<V: Copy> Splat<V> {
    #[inline(always)]
    fn new<S: Simd<V = V>>(z: C) -> Self {
        Splat {
            re: S::splat(z.re),
            im: S::splat(z.im),
        }
    }
}

/// acc + conj(s) x, lane by lane, for split complex (re, im).
#[inline(always)]
fn add_conj_times<S: Simd>(acc: (S::V, S::V), s: Splat<S::V>, x: (S::V, S::V)) -> (S::V, S::V) {
    let re = S::mul_add(s.im, x.1, S::mul_add(s.re, x.0, acc.0));
    let im = S::neg_mul_add(s.im, x.0, S::mul_add(s.re, x.1, acc.1));
    (re, im)
}

/// acc - conj(s) x.
#[inline(always)]
fn sub_conj_times<S: Simd>(acc: (S::V, S::V), s: Splat<S::V>, x: (S::V, S::V)) -> (S::V, S::V) {
    let re = S::neg_mul_add(s.im, x.1, S::neg_mul_add(s.re, x.0, acc.0));
    let im = S::mul_add(s.im, x.0, S::neg_mul_add(s.re, x.1, acc.1));
    (re, im)
}

/// The values at `at` of a split complex array, times the recursion factor `f`.
///
/// # Safety
/// `at..at+4` must be inside `re` and `im` (the half layout's slack covers at = -1 of a row).
#[inline(always)]
unsafe fn scaled<S: Simd>(f: S::V, re: *const f64, im: *const f64, at: isize) -> (S::V, S::V) {
    unsafe {
        (
            S::mul(f, S::load(re.offset(at))),
            S::mul(f, S::load(im.offset(at))),
        )
    }
}

/// Fills the rows mb <= (j+1)/2 of every level of one neighbor's U (half layout, planes `ur`
/// and `ui` of `idx.half_len`).
#[cfg(test)]
pub fn compute_u<S: Simd>(idx: &Indices, ck: &CayleyKlein, ur: &mut [f64], ui: &mut [f64]) {
    u_levels::<S, false>(idx, ck, (ur, ui), 0.0, (&mut [], &mut []));
}

/// `compute_u`, and adds `weight` times the rows mb <= j/2 of U to a total U (`total`, full
/// layout) on the way.
#[inline(always)]
pub fn compute_u_into_total<S: Simd>(
    idx: &Indices,
    ck: &CayleyKlein,
    ur: &mut [f64],
    ui: &mut [f64],
    weight: f64,
    total: (&mut [f64], &mut [f64]),
) {
    u_levels::<S, true>(idx, ck, (ur, ui), weight, total);
}

#[inline(always)]
fn u_levels<S: Simd, const ADD: bool>(
    idx: &Indices,
    ck: &CayleyKlein,
    u: (&mut [f64], &mut [f64]),
    weight: f64,
    total: (&mut [f64], &mut [f64]),
) {
    let (ur, ui) = u;
    assert!(ur.len() == idx.half_len && ui.len() == idx.half_len);
    assert!(!ADD || (total.0.len() == idx.full_len && total.1.len() == idx.full_len));
    let (a, b) = (Splat::new::<S>(ck.a), Splat::new::<S>(ck.b));
    let zero = (S::zero(), S::zero());
    let w = S::splat(weight);
    start_level_zero(idx, ur, ui);
    if ADD {
        total.0[idx.full_start[0]] += weight;
    }
    let (pr, pi) = (ur.as_mut_ptr(), ui.as_mut_ptr());
    let (tr, ti) = (total.0.as_mut_ptr(), total.1.as_mut_ptr());
    for j in 1..=idx.twojmax {
        let (s, sp) = (idx.stride[j], idx.stride[j - 1]);
        for mb in 0..=j / 2 {
            let cur = idx.half_start[j] + mb * s;
            let prev = (idx.half_start[j - 1] + mb * sp) as isize;
            let to = idx.full_start[j] + mb * s;
            for c in (0..s / LANES).map(|c| c * LANES) {
                // SAFETY: `cur + c` is inside row mb of level j; `prev + c - 1 .. prev + c + 4`
                // stays inside the array (SLACK before level 0, level j after level j-1);
                // row mb of level j of the full layout has the same stride
                unsafe {
                    let fa = S::load(idx.rec_a.as_ptr().add(cur + c));
                    let fb = S::load(idx.rec_b.as_ptr().add(cur + c));
                    let x = scaled::<S>(fa, pr, pi, prev + c as isize);
                    let y = scaled::<S>(fb, pr, pi, prev + c as isize - 1);
                    let v = sub_conj_times::<S>(add_conj_times::<S>(zero, a, x), b, y);
                    S::store(pr.add(cur + c), v.0);
                    S::store(pi.add(cur + c), v.1);
                    if ADD {
                        let (t0, t1) = (tr.add(to + c), ti.add(to + c));
                        S::store(t0, S::mul_add(w, v.0, S::load(t0)));
                        S::store(t1, S::mul_add(w, v.1, S::load(t1)));
                    }
                }
            }
        }
        if j % 2 == 1 {
            mirror_extra_row::<S>(idx, j, ur, ui);
        }
    }
}

/// Fills the half layout of one neighbor's U (`ur`, `ui`) and of dU/dr_ij (`du`: six planes
/// of `idx.half_len`, real and imaginary parts of d/dx, d/dy, d/dz).
#[inline(always)]
pub fn compute_u_du<S: Simd>(
    idx: &Indices,
    ck: &CayleyKlein,
    ur: &mut [f64],
    ui: &mut [f64],
    du: &mut [f64],
) {
    let n = idx.half_len;
    assert!(ur.len() == n && ui.len() == n && du.len() == 6 * n);
    let (a, b) = (Splat::new::<S>(ck.a), Splat::new::<S>(ck.b));
    let da = ck.da.map(Splat::new::<S>);
    let db = ck.db.map(Splat::new::<S>);
    let zero = (S::zero(), S::zero());
    start_level_zero(idx, ur, ui);
    for k in 0..3 {
        let (re, im) = du[2 * k * n..(2 * k + 2) * n].split_at_mut(n);
        start_level_zero(idx, re, im);
        re[idx.half_start[0]] = 0.0;
    }
    let (pr, pi, pd) = (ur.as_mut_ptr(), ui.as_mut_ptr(), du.as_mut_ptr());
    for j in 1..=idx.twojmax {
        let (s, sp) = (idx.stride[j], idx.stride[j - 1]);
        for mb in 0..=j / 2 {
            let cur = idx.half_start[j] + mb * s;
            let prev = (idx.half_start[j - 1] + mb * sp) as isize;
            for c in (0..s).step_by(LANES) {
                let (at, from) = (cur + c, prev + c as isize);
                // SAFETY: as in `compute_u`, for each of the seven planes
                unsafe {
                    let fa = S::load(idx.rec_a.as_ptr().add(at));
                    let fb = S::load(idx.rec_b.as_ptr().add(at));
                    let x = scaled::<S>(fa, pr, pi, from);
                    let y = scaled::<S>(fb, pr, pi, from - 1);
                    let v = sub_conj_times::<S>(add_conj_times::<S>(zero, a, x), b, y);
                    S::store(pr.add(at), v.0);
                    S::store(pi.add(at), v.1);
                    for k in 0..3 {
                        let (gr, gi) = (pd.add(2 * k * n), pd.add((2 * k + 1) * n));
                        let dx = scaled::<S>(fa, gr, gi, from);
                        let dy = scaled::<S>(fb, gr, gi, from - 1);
                        let g = add_conj_times::<S>(zero, da[k], x);
                        let g = add_conj_times::<S>(g, a, dx);
                        let g = sub_conj_times::<S>(g, db[k], y);
                        let g = sub_conj_times::<S>(g, b, dy);
                        S::store(gr.add(at), g.0);
                        S::store(gi.add(at), g.1);
                    }
                }
            }
        }
        if j % 2 == 1 {
            mirror_extra_row::<S>(idx, j, ur, ui);
            for k in 0..3 {
                let (re, im) = du[2 * k * n..(2 * k + 2) * n].split_at_mut(n);
                mirror_extra_row::<S>(idx, j, re, im);
            }
        }
    }
}

/// Reverse mode through the U recursion of one neighbor: with U its half layout (`u`, from
/// `compute_u`) and Y a half-layout array (`y`), returns the derivatives with respect to r_ij
/// of L = sum over the half layout of (Re Y Re U + Im Y Im U) = sum_j conj(dU_j) . Y_j,
/// without forming dU/dr. The gradient of L flows from level twojmax down to level 1 through
/// `g` (two half-layout planes of scratch) and ends in dL/d conj(a) and dL/d conj(b), which
/// the Cayley-Klein derivatives turn into dL/dr: about a third of the work of the three
/// components of dU/dr.
///
/// Complex gradients are g_z = dL/d Re z + i dL/d Im z: for w = c z, g_z = conj(c) g_w and
/// g_c = conj(z) g_w; for w = s conj(z) with real s, g_z = s conj(g_w).
#[inline(always)]
pub fn adjoint_u<S: Simd>(
    idx: &Indices,
    ck: &CayleyKlein,
    u: (&[f64], &[f64]),
    y: (&[f64], &[f64]),
    g: (&mut [f64], &mut [f64]),
) -> [f64; 3] {
    let n = idx.half_len;
    assert!(u.0.len() == n && u.1.len() == n && y.0.len() == n && y.1.len() == n);
    assert!(g.0.len() == n && g.1.len() == n);
    let (a, b) = (Splat::new::<S>(ck.a), Splat::new::<S>(ck.b));
    // sums of g_conj(a) and g_conj(b) lane by lane
    let (mut ga, mut gb) = ((S::zero(), S::zero()), (S::zero(), S::zero()));
    let (ur, ui) = (u.0.as_ptr(), u.1.as_ptr());
    let (gr, gi) = (g.0.as_mut_ptr(), g.1.as_mut_ptr());
    let top = idx.twojmax;
    for j in (1..=top).rev() {
        // the gradient of level j: Y alone at the top, else Y plus what level j+1 passed down
        let (cr, ci) = if j == top {
            (y.0.as_ptr(), y.1.as_ptr())
        } else {
            (gr as *const f64, gi as *const f64)
        };
        if j % 2 == 1 && j < top {
            fold_extra_row::<S>(idx, j, (&mut *g.0, &mut *g.1));
        }
        let (s, sp) = (idx.stride[j], idx.stride[j - 1]);
        for mb in 0..=j / 2 {
            let cur = idx.half_start[j] + mb * s;
            let prev = idx.half_start[j - 1] + mb * sp;
            for c in (0..s / LANES).map(|c| c * LANES) {
                let at = cur + c;
                // SAFETY: U reads as in `compute_u`; gradient and table reads at at + 1 run
                // one value past row mb of level j, into the next row, level or SLACK, where
                // rec_b is 0 (its column 0, or padding); g writes stay in row mb of level j-1
                unsafe {
                    let fa = S::load(idx.rec_a.as_ptr().add(at));
                    let fb = S::load(idx.rec_b.as_ptr().add(at));
                    let gu = (S::load(cr.add(at)), S::load(ci.add(at)));
                    let x = scaled::<S>(fa, ur, ui, (prev + c) as isize);
                    let yy = scaled::<S>(fb, ur, ui, (prev + c) as isize - 1);
                    // g_conj(a) += conj(x) gu, g_conj(b) -= conj(y) gu
                    ga.0 = S::mul_add(x.1, gu.1, S::mul_add(x.0, gu.0, ga.0));
                    ga.1 = S::neg_mul_add(x.1, gu.0, S::mul_add(x.0, gu.1, ga.1));
                    gb.0 = S::neg_mul_add(yy.1, gu.1, S::neg_mul_add(yy.0, gu.0, gb.0));
                    gb.1 = S::mul_add(yy.1, gu.0, S::neg_mul_add(yy.0, gu.1, gb.1));
                    if c < sp {
                        // g_P[m] = a rec_a[m] gu[m] - b rec_b[m+1] gu[m+1], plus Y of level j-1
                        let fb1 = S::load(idx.rec_b.as_ptr().add(at + 1));
                        let gu1 = (S::load(cr.add(at + 1)), S::load(ci.add(at + 1)));
                        let p = (S::mul(fa, gu.0), S::mul(fa, gu.1));
                        let q = (S::mul(fb1, gu1.0), S::mul(fb1, gu1.1));
                        let to = prev + c;
                        let base = (S::load(y.0.as_ptr().add(to)), S::load(y.1.as_ptr().add(to)));
                        let v = times_sub::<S>(base, a, p, b, q);
                        S::store(gr.add(to), v.0);
                        S::store(gi.add(to), v.1);
                    }
                }
            }
        }
    }
    let ga = C::new(S::sum(ga.0), S::sum(ga.1));
    let gb = C::new(S::sum(gb.0), S::sum(gb.1));
    std::array::from_fn(|k| (ga * ck.da[k] + gb * ck.db[k]).re)
}

/// base + a p - b q, lane by lane, for split complex values.
#[inline(always)]
fn times_sub<S: Simd>(
    base: (S::V, S::V),
    a: Splat<S::V>,
    p: (S::V, S::V),
    b: Splat<S::V>,
    q: (S::V, S::V),
) -> (S::V, S::V) {
    let re = S::neg_mul_add(a.im, p.1, S::mul_add(a.re, p.0, base.0));
    let re = S::mul_add(b.im, q.1, S::neg_mul_add(b.re, q.0, re));
    let im = S::mul_add(a.im, p.0, S::mul_add(a.re, p.1, base.1));
    let im = S::neg_mul_add(b.im, q.0, S::neg_mul_add(b.re, q.1, im));
    (re, im)
}

/// The reverse of `mirror_extra_row`: adds the gradient of the extra row (j+1)/2 of odd level
/// j to that of row (j-1)/2, g_src[ma] += sign conj(g_extra[j-ma]).
#[inline(always)]
fn fold_extra_row<S: Simd>(idx: &Indices, j: usize, g: (&mut [f64], &mut [f64])) {
    let s = idx.stride[j];
    let extra = idx.half_start[j] + (j + 1) / 2 * s;
    let src = extra - s;
    assert!(extra + s <= g.0.len() && g.0.len() == g.1.len() && src >= LANES);
    for c in (0..s / LANES).map(|c| c * LANES) {
        // columns c..c+4 of the source row from columns j-c-3..=j-c of the extra row,
        // reversed; those before the extra row fall in the source row, where the sign is 0
        // SAFETY: extra + j - c - 3 >= src and extra + j - c + 1 <= extra + s
        unsafe {
            let from = extra + j - c - 3;
            let sign = S::reverse(S::load(idx.mirror_sign.as_ptr().add(from)));
            let (er, ei) = (
                S::reverse(S::load(g.0.as_ptr().add(from))),
                S::reverse(S::load(g.1.as_ptr().add(from))),
            );
            let (dr, di) = (g.0.as_mut_ptr().add(src + c), g.1.as_mut_ptr().add(src + c));
            S::store(dr, S::mul_add(sign, er, S::load(dr)));
            S::store(di, S::neg_mul_add(sign, ei, S::load(di)));
        }
    }
}

/// U_0 = 1, with zero padding.
#[inline(always)]
fn start_level_zero(idx: &Indices, re: &mut [f64], im: &mut [f64]) {
    let row = idx.half_start[0]..idx.half_start[0] + idx.stride[0];
    re[row.clone()].fill(0.0);
    im[row].fill(0.0);
    re[idx.half_start[0]] = 1.0;
}

/// For odd j, row (j+1)/2 of level j (half layout), the mirror of row (j-1)/2, which the
/// recursion for level j+1 reads; zero on padding.
#[inline(always)]
fn mirror_extra_row<S: Simd>(idx: &Indices, j: usize, re: &mut [f64], im: &mut [f64]) {
    let s = idx.stride[j];
    let dst = idx.half_start[j] + (j + 1) / 2 * s;
    let src = dst - s;
    assert!(dst + s <= re.len() && re.len() == im.len() && src >= LANES);
    let zero = S::zero();
    for c in (0..s / LANES).map(|c| c * LANES) {
        // columns c..c+4 of the extra row from columns j-c-3..=j-c of the source row, reversed;
        // those before column 0 (for padding) fall in the row or slack before, times sign 0
        // SAFETY: src + j - c - 3 >= src - 3 and src + j - c + 1 <= dst, inside the arrays
        unsafe {
            let from = src + j - c - 3;
            let sign = S::load(idx.mirror_sign.as_ptr().add(dst + c));
            let (r, i) = (
                S::load(re.as_ptr().add(from)),
                S::load(im.as_ptr().add(from)),
            );
            S::store(re.as_mut_ptr().add(dst + c), S::mul(sign, S::reverse(r)));
            S::store(
                im.as_mut_ptr().add(dst + c),
                S::neg_mul_add(sign, S::reverse(i), zero),
            );
        }
    }
}

/// Completes every level of a total U (full layout) from its rows mb <= j/2: rows j - mb from
/// rows mb < j/2, and for even j the right half of the middle row from its left half, as
/// LAMMPS does.
pub fn mirror_total(idx: &Indices, re: &mut [f64], im: &mut [f64]) {
    for j in 1..=idx.twojmax {
        let (start, s) = (idx.full_start[j], idx.stride[j]);
        for mb in 0..=j / 2 {
            let last = if 2 * mb == j { j / 2 } else { j + 1 };
            for ma in 0..last {
                let sign = if (ma + mb) % 2 == 0 { 1.0 } else { -1.0 };
                let (from, to) = (start + mb * s + ma, start + (j - mb) * s + j - ma);
                re[to] = sign * re[from];
                im[to] = -sign * im[from];
            }
        }
    }
}

/// The switching function f_c(r) that takes a neighbor's weight smoothly to zero at rcut,
/// and its derivative d f_c / d r.
pub fn switching(r: f64, rcut: f64, rmin0: f64, switchflag: bool) -> (f64, f64) {
    if !switchflag || r <= rmin0 {
        return (1.0, 0.0);
    }
    if r > rcut {
        return (0.0, 0.0);
    }
    let scale = std::f64::consts::PI / (rcut - rmin0);
    let phase = (r - rmin0) * scale;
    (0.5 * (phase.cos() + 1.0), -0.5 * phase.sin() * scale)
}

#[cfg(test)]
mod tests {
    use super::super::simd::Portable;
    use super::*;

    fn sample() -> ([f64; 3], f64) {
        let rij = [0.7, -1.3, 2.1];
        let r = (rij[0] * rij[0] + rij[1] * rij[1] + rij[2] * rij[2]) as f64;
        (rij, r.sqrt())
    }

    /// U of one neighbor as full complex matrices per level.
    fn full_u(idx: &Indices, ck: &CayleyKlein) -> Vec<Vec<C>> {
        let (mut ur, mut ui) = (vec![0.0; idx.half_len], vec![0.0; idx.half_len]);
        let (mut tr, mut ti) = (vec![0.0; idx.full_len], vec![0.0; idx.full_len]);
        compute_u_into_total::<Portable>(idx, ck, &mut ur, &mut ui, 1.0, (&mut tr, &mut ti));
        mirror_total(idx, &mut tr, &mut ti);
        (0..=idx.twojmax)
            .map(|j| {
                let at = |mb: usize, ma: usize| idx.full_start[j] + mb * idx.stride[j] + ma;
                (0..(j + 1) * (j + 1))
                    .map(|e| {
                        C::new(
                            tr[at(e / (j + 1), e % (j + 1))],
                            ti[at(e / (j + 1), e % (j + 1))],
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn u_is_unitary() {
        let idx = Indices::new(7);
        let (rij, r) = sample();
        let u = full_u(&idx, &CayleyKlein::new(rij, r, 4.0, 0.99363, 0.0));
        for (j, level) in u.iter().enumerate() {
            let n = j + 1;
            for a in 0..n {
                for b in 0..n {
                    let dot: C = (0..n)
                        .map(|k| level[a * n + k] * level[b * n + k].conj())
                        .sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).norm() < 1e-12, "level {j} rows {a} {b}: {dot}");
                }
            }
        }
    }

    #[test]
    fn u_level_one_is_the_cayley_klein_matrix() {
        // U_1 = [[conj(a), -conj(b)], [b, a]] in (mb, ma) order, independent of the recursion
        let idx = Indices::new(2);
        let (rij, r) = sample();
        let ck = CayleyKlein::new(rij, r, 4.0, 0.99363, 0.0);
        let u = full_u(&idx, &ck);
        let want = [ck.a.conj(), -ck.b.conj(), ck.b, ck.a];
        for (got, want) in u[1].iter().zip(want) {
            assert!((got - want).norm() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn du_matches_finite_differences() {
        let idx = Indices::new(5);
        let (rij, r) = sample();
        let (rcut, rfac0, rmin0) = (3.5, 0.97, 0.3);
        let n = idx.half_len;
        let (mut ur, mut ui, mut du) = (vec![0.0; n], vec![0.0; n], vec![0.0; 6 * n]);
        let ck = CayleyKlein::new(rij, r, rcut, rfac0, rmin0);
        compute_u_du::<Portable>(&idx, &ck, &mut ur, &mut ui, &mut du);
        let (mut vr, mut vi) = (vec![0.0; n], vec![0.0; n]);
        compute_u::<Portable>(&idx, &ck, &mut vr, &mut vi);
        assert_eq!((&ur, &ui), (&vr, &vi));
        let h = 1e-6;
        for k in 0..3 {
            let shifted = |d: f64| {
                let mut v = rij;
                v[k] += d;
                let rv = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                let (mut re, mut im) = (vec![0.0; n], vec![0.0; n]);
                compute_u::<Portable>(
                    &idx,
                    &CayleyKlein::new(v, rv, rcut, rfac0, rmin0),
                    &mut re,
                    &mut im,
                );
                (re, im)
            };
            let (plus, minus) = (shifted(h), shifted(-h));
            for e in 0..n {
                let fd_re = (plus.0[e] - minus.0[e]) / (2.0 * h);
                let fd_im = (plus.1[e] - minus.1[e]) / (2.0 * h);
                let (gr, gi) = (du[2 * k * n + e], du[(2 * k + 1) * n + e]);
                assert!(
                    (fd_re - gr).abs() < 1e-7 && (fd_im - gi).abs() < 1e-7,
                    "value {e} direction {k}: {fd_re} {fd_im} vs {gr} {gi}"
                );
            }
        }
    }

    #[test]
    fn switching_derivative() {
        let (rcut, rmin0) = (4.0, 0.5);
        for r in [0.2, 0.7, 2.0, 3.9] {
            let h = 1e-6;
            let fd = (switching(r + h, rcut, rmin0, true).0
                - switching(r - h, rcut, rmin0, true).0)
                / (2.0 * h);
            assert!((fd - switching(r, rcut, rmin0, true).1).abs() < 1e-8);
        }
        assert_eq!(switching(4.1, rcut, rmin0, true), (0.0, 0.0));
        assert_eq!(switching(3.0, rcut, rmin0, false), (1.0, 0.0));
    }
}
