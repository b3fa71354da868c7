//! Stage U: the Wigner U-matrices of one neighbor, and their derivatives (dU/dr).
//!
//! The neighbor at r_ij is mapped to a point on the 3-sphere (Bartok 2010; Thompson et al.
//! 2015, eq. 4): polar angle theta0 = rfac0 * pi * (r - rmin0) / (rcut - rmin0) and the
//! Cayley-Klein parameters a = (z0 - i z) / r0, b = (y - i x) / r0 with z0 = r cot(theta0),
//! r0 = sqrt(r^2 + z0^2). U_j follows from U_{j-1} by the recursion of Varshalovich et al.
//! 4.8.2, computed for the rows mb <= j/2 and completed by the symmetry
//! U[j-ma][j-mb] = (-1)^(ma-mb) conj(U[ma][mb]).

use num_complex::Complex64 as C;

use super::indices::Indices;

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

/// Fills the rows mb <= j/2 of every level of `u` (length `idx.u_len`), which is all that
/// the contractions read; `mirror_levels` completes the rest where full matrices are needed.
#[inline(always)]
pub fn compute_u(idx: &Indices, ck: &CayleyKlein, u: &mut [C]) {
    let (ac, bc) = (ck.a.conj(), ck.b.conj());
    u[0] = C::new(1.0, 0.0);
    for j in 1..=idx.twojmax {
        let (cur, prev) = (idx.u_block[j], idx.u_block[j - 1]);
        for mb in 0..=j / 2 {
            for ma in 0..=j {
                let mut value = C::new(0.0, 0.0);
                if ma < j {
                    value += ac * u[prev + j * mb + ma] * idx.rootpq(j - ma, j - mb);
                }
                if ma > 0 {
                    value -= bc * u[prev + j * mb + ma - 1] * idx.rootpq(ma, j - mb);
                }
                u[cur + (j + 1) * mb + ma] = value;
            }
        }
        mirror_next_row(idx, u, j, |x, sign| sign * x.conj());
    }
}

/// Fills the rows mb <= j/2 of `u` and of `du` (dU/dr_ij, three components per element).
#[inline(always)]
pub fn compute_u_du(idx: &Indices, ck: &CayleyKlein, u: &mut [C], du: &mut [[C; 3]]) {
    let (ac, bc) = (ck.a.conj(), ck.b.conj());
    let dac = ck.da.map(|x| x.conj());
    let dbc = ck.db.map(|x| x.conj());
    u[0] = C::new(1.0, 0.0);
    du[0] = [C::new(0.0, 0.0); 3];
    for j in 1..=idx.twojmax {
        let (cur, prev) = (idx.u_block[j], idx.u_block[j - 1]);
        for mb in 0..=j / 2 {
            for ma in 0..=j {
                let mut value = C::new(0.0, 0.0);
                let mut grad = [C::new(0.0, 0.0); 3];
                if ma < j {
                    let p = prev + j * mb + ma;
                    let root = idx.rootpq(j - ma, j - mb);
                    let (x, dx) = (u[p] * root, du[p].map(|g| g * root));
                    value += ac * x;
                    for k in 0..3 {
                        grad[k] += dac[k] * x + ac * dx[k];
                    }
                }
                if ma > 0 {
                    let p = prev + j * mb + ma - 1;
                    let root = idx.rootpq(ma, j - mb);
                    let (x, dx) = (u[p] * root, du[p].map(|g| g * root));
                    value -= bc * x;
                    for k in 0..3 {
                        grad[k] -= dbc[k] * x + bc * dx[k];
                    }
                }
                u[cur + (j + 1) * mb + ma] = value;
                du[cur + (j + 1) * mb + ma] = grad;
            }
        }
        mirror_next_row(idx, u, j, |x, sign| sign * x.conj());
        mirror_next_row(idx, du, j, |g, sign| g.map(|x| sign * x.conj()));
    }
}

/// X[j-ma][j-mb] = (-1)^(ma-mb) conj(X[ma][mb]): the symmetry U, Z and Y share.
#[inline]
fn mirrored<T: Copy>(
    x: &mut [T],
    start: usize,
    j: usize,
    ma: usize,
    mb: usize,
    conj_times: &impl Fn(T, f64) -> T,
) {
    let sign = if (ma + mb) % 2 == 0 { 1.0 } else { -1.0 };
    x[start + (j - mb) * (j + 1) + j - ma] = conj_times(x[start + mb * (j + 1) + ma], sign);
}

/// The recursion for level j+1 reads rows mb <= (j+1)/2 of level j; for odd j the last of
/// them, (j+1)/2, is the mirror of row (j-1)/2.
fn mirror_next_row<T: Copy>(
    idx: &Indices,
    x: &mut [T],
    j: usize,
    conj_times: impl Fn(T, f64) -> T,
) {
    if j % 2 == 1 && j < idx.twojmax {
        for ma in 0..=j {
            mirrored(x, idx.u_block[j], j, ma, (j - 1) / 2, &conj_times);
        }
    }
}

/// Completes every level of `u` from its rows mb <= j/2 (for even j, the right half of the
/// middle row from its left half).
#[inline(always)]
pub fn mirror_levels(idx: &Indices, u: &mut [C]) {
    for j in 1..=idx.twojmax {
        for mb in 0..=j / 2 {
            let last = if 2 * mb == j { j / 2 } else { j + 1 };
            for ma in 0..last {
                mirrored(u, idx.u_block[j], j, ma, mb, &|x: C, sign| sign * x.conj());
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
    use super::*;

    fn sample() -> ([f64; 3], f64) {
        let rij = [0.7, -1.3, 2.1];
        let r = (rij[0] * rij[0] + rij[1] * rij[1] + rij[2] * rij[2]) as f64;
        (rij, r.sqrt())
    }

    #[test]
    fn u_is_unitary() {
        let idx = Indices::new(6);
        let (rij, r) = sample();
        let ck = CayleyKlein::new(rij, r, 4.0, 0.99363, 0.0);
        let mut u = vec![C::new(0.0, 0.0); idx.u_len];
        compute_u(&idx, &ck, &mut u);
        mirror_levels(&idx, &mut u);
        for j in 0..=6 {
            let s = idx.u_block[j];
            let n = j + 1;
            for a in 0..n {
                for b in 0..n {
                    let dot: C = (0..n)
                        .map(|k| u[s + a * n + k] * u[s + b * n + k].conj())
                        .sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).norm() < 1e-12, "level {j} rows {a} {b}: {dot}");
                }
            }
        }
    }

    #[test]
    fn du_matches_finite_differences() {
        let idx = Indices::new(5);
        let (rij, r) = sample();
        let (rcut, rfac0, rmin0) = (3.5, 0.97, 0.3);
        let mut u = vec![C::new(0.0, 0.0); idx.u_len];
        let mut du = vec![[C::new(0.0, 0.0); 3]; idx.u_len];
        compute_u_du(
            &idx,
            &CayleyKlein::new(rij, r, rcut, rfac0, rmin0),
            &mut u,
            &mut du,
        );
        let h = 1e-6;
        for k in 0..3 {
            let shifted = |d: f64| {
                let mut v = rij;
                v[k] += d;
                let rv = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                let mut out = vec![C::new(0.0, 0.0); idx.u_len];
                compute_u(&idx, &CayleyKlein::new(v, rv, rcut, rfac0, rmin0), &mut out);
                out
            };
            let (plus, minus) = (shifted(h), shifted(-h));
            let blocks = &idx.u_block;
            let half_rows = (0..=idx.twojmax)
                .flat_map(|j| (0..(j / 2 + 1) * (j + 1)).map(move |e| blocks[j] + e));
            for e in half_rows {
                let fd = (plus[e] - minus[e]) / (2.0 * h);
                assert!(
                    (fd - du[e][k]).norm() < 1e-7,
                    "element {e} direction {k}: {fd} vs {}",
                    du[e][k]
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
