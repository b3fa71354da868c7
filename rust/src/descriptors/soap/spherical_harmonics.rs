//! Real spherical harmonics Y_lm of a direction and their derivatives with respect to the
//! (unnormalised) pair vector, for all l <= l_max at once.
//!
//! Written by hand: the `sphericart` crate wraps a C++ library whose build needs CMake, and
//! the pure-Rust crates we know of give no derivatives. The algorithm is sphericart's (Bigi et
//! al., J. Chem. Phys. 159, 064802 (2023)): solid harmonics S_lm(r) = r^l Y_lm(r/|r|) are
//! polynomials, S_l^{+-m} = N_lm Q_l^m(z, r^2) {C_m, S_m}(x, y) with C_m + i S_m = (x + iy)^m
//! and Q_l^m from the Legendre recurrences; their derivatives follow from
//! dQ_l^m/dx = -x Q_{l-1}^{m+1} (same for y) and dQ_l^m/dz = (l + m) Q_{l-1}^m.
//!
//! Orthonormal on the unit sphere. The phase convention (no Condon-Shortley factor) is
//! irrelevant to the power spectrum, which sums over m.
//!
//! Index of (l, m), m = -l..=l: l^2 + l + m; m < 0 are the sine (S_|m|) functions.

#[derive(Debug, Clone)]
pub struct SphericalHarmonics {
    l_max: usize,
    /// N_lm for 0 <= m <= l at l (l + 1) / 2 + m.
    norm: Vec<f64>,
    /// Q_l^m at u, same index.
    q: Vec<f64>,
    /// The recurrence's coefficients (2l - 1) / (l - m) and (l + m - 1) / (l - m), same index.
    recurrence: Vec<(f64, f64)>,
    c: Vec<f64>,
    s: Vec<f64>,
}

#[inline]
fn tri(l: usize, m: usize) -> usize {
    l * (l + 1) / 2 + m
}

impl SphericalHarmonics {
    pub fn new(l_max: usize) -> Self {
        let mut norm = vec![0.0; tri(l_max + 1, 0)];
        let four_pi = 4.0 * std::f64::consts::PI;
        for l in 0..=l_max {
            // (l - m)! / (l + m)! built up one m at a time
            let mut ratio = 1.0;
            for m in 0..=l {
                if m > 0 {
                    ratio /= ((l + m) * (l - m + 1)) as f64;
                }
                let two = if m == 0 { 1.0 } else { 2.0 };
                norm[tri(l, m)] = (two * (2 * l + 1) as f64 / four_pi * ratio).sqrt();
            }
        }
        let mut recurrence = vec![(0.0, 0.0); tri(l_max + 1, 0)];
        for l in 0..=l_max {
            for m in 0..l {
                let d = (l - m) as f64;
                recurrence[tri(l, m)] = ((2 * l - 1) as f64 / d, (l + m - 1) as f64 / d);
            }
        }
        SphericalHarmonics {
            l_max,
            norm,
            recurrence,
            q: vec![0.0; tri(l_max + 1, 0)],
            c: vec![0.0; l_max + 1],
            s: vec![0.0; l_max + 1],
        }
    }

    /// Number of (l, m): (l_max + 1)^2.
    pub fn size(&self) -> usize {
        (self.l_max + 1) * (self.l_max + 1)
    }

    /// Y_lm(u) for the unit vector `u` into `values`; with `gradient = Some((g, inv_r))`,
    /// dY_lm/dr_a into g[a * size + lm] for a pair vector r = u / inv_r.
    pub fn compute(
        &mut self,
        u: [f64; 3],
        values: &mut [f64],
        gradient: Option<(&mut [f64], f64)>,
    ) {
        let [x, y, z] = u;
        let l_max = self.l_max;
        let q = &mut self.q;
        // Q_l^m on the unit sphere (r^2 = 1)
        q[0] = 1.0;
        for m in 0..=l_max {
            if m > 0 {
                q[tri(m, m)] = (2 * m - 1) as f64 * q[tri(m - 1, m - 1)];
            }
            if m < l_max {
                q[tri(m + 1, m)] = (2 * m + 1) as f64 * z * q[tri(m, m)];
            }
            for l in m + 2..=l_max {
                let (a, b) = self.recurrence[tri(l, m)];
                q[tri(l, m)] = a * z * q[tri(l - 1, m)] - b * q[tri(l - 2, m)];
            }
        }
        self.c[0] = 1.0;
        self.s[0] = 0.0;
        for m in 1..=l_max {
            self.c[m] = x * self.c[m - 1] - y * self.s[m - 1];
            self.s[m] = x * self.s[m - 1] + y * self.c[m - 1];
        }
        for l in 0..=l_max {
            let centre = l * l + l;
            values[centre] = self.norm[tri(l, 0)] * q[tri(l, 0)];
            for m in 1..=l {
                let nq = self.norm[tri(l, m)] * q[tri(l, m)];
                values[centre + m] = nq * self.c[m];
                values[centre - m] = nq * self.s[m];
            }
        }
        let Some((gradient, inv_r)) = gradient else {
            return;
        };
        let size = (l_max + 1) * (l_max + 1);
        let (gx, rest) = gradient.split_at_mut(size);
        let (gy, gz) = rest.split_at_mut(size);
        // Q_{l-1}^m, zero outside 0 <= m <= l - 1
        let q_below = |l: usize, m: usize| {
            if l >= 1 && m < l {
                q[tri(l - 1, m)]
            } else {
                0.0
            }
        };
        for l in 0..=l_max {
            let centre = l * l + l;
            let lf = l as f64;
            for m in 0..=l {
                let n = self.norm[tri(l, m)];
                let qlm = q[tri(l, m)];
                let dq_dxy = -q_below(l, m + 1); // dQ/dx = x * dq_dxy, dQ/dy = y * dq_dxy
                let dq_dz = (l + m) as f64 * q_below(l, m);
                let mf = m as f64;
                // the solid harmonic's gradient at u, for the cosine (C_m) function
                let (cm, sm) = (self.c[m], self.s[m]);
                let (cm1, sm1) = if m > 0 {
                    (self.c[m - 1], self.s[m - 1])
                } else {
                    (0.0, 0.0)
                };
                let cos = [
                    n * (x * dq_dxy * cm + qlm * mf * cm1),
                    n * (y * dq_dxy * cm - qlm * mf * sm1),
                    n * dq_dz * cm,
                ];
                // on the sphere, dY/dr = (grad S(u) - l Y(u) u) / |r|
                let yc = values[centre + m];
                gx[centre + m] = (cos[0] - lf * yc * x) * inv_r;
                gy[centre + m] = (cos[1] - lf * yc * y) * inv_r;
                gz[centre + m] = (cos[2] - lf * yc * z) * inv_r;
                if m > 0 {
                    let sin = [
                        n * (x * dq_dxy * sm + qlm * mf * sm1),
                        n * (y * dq_dxy * sm + qlm * mf * cm1),
                        n * dq_dz * sm,
                    ];
                    let ys = values[centre - m];
                    gx[centre - m] = (sin[0] - lf * ys * x) * inv_r;
                    gy[centre - m] = (sin[1] - lf * ys * y) * inv_r;
                    gz[centre - m] = (sin[2] - lf * ys * z) * inv_r;
                }
            }
        }
    }
}
