//! The radial basis g_k(r) of one bond (centre species, neighbour species) and the radial
//! functions R_nl(r) = sum_k c_nlk g_k(r), with derivatives, as pacemaker defines them
//! (Bochkarev et al., Phys. Rev. Materials 6, 013804 (2022); python-ace's "radbase"
//! names). Written from the definitions; evaluated exactly (python-ace tabulates them on a
//! grid of deltaSplineBins and interpolates, which differs from the exact functions by
//! about 1e-12 at its default grid).

use serde::{Deserialize, Serialize};

/// The radial basis families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RadialBasis {
    /// Chebyshev polynomials of the scaled distance x = 1 - 2 (e^(-lambda r / r_c) -
    /// e^(-lambda)) / (1 - e^(-lambda)): g_0 = f_c, g_k = (1 - T_k(x)) / 2 f_c, with
    /// f_c = (1 + cos(pi r / r_c)) / 2, times (1 + cos(pi (r - r_c + d_c) / d_c)) / 2 over
    /// the last d_c before r_c.
    ChebExpCos,
    /// g_k = (1 - T_(k+1)(x)) / 2 with x = 1 - 2 (1 - r / r_c)^lambda, no envelope.
    ChebPow,
    /// The simplified spherical Bessel functions of Kocer, Mason and Erturk (J. Chem.
    /// Phys. 150, 154102 (2019)), orthogonalised by their recursion; zero at r_c.
    SBessel,
}

/// The radial settings of one bond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bond {
    pub radbase: RadialBasis,
    /// Outer cutoff r_c, Angstrom: pairs at r >= r_c are not seen.
    pub rcut: f64,
    /// Width of ChebExpCos's second envelope, Angstrom (0: none).
    #[serde(default)]
    pub dcut: f64,
    /// lambda of ChebExpCos and ChebPow (pacemaker's radparameters[0]).
    #[serde(default)]
    pub lambda: f64,
    /// Inner cutoff (pacemaker's inner_cutoff_type "distance"): g = 0 for r <= r_in -
    /// delta_in, smoothly to g over [r_in - delta_in, r_in]. 0 and 0: none.
    #[serde(default)]
    pub r_in: f64,
    #[serde(default)]
    pub delta_in: f64,
    /// Functions g_k, k < nradbase (the rank-1 functions read them directly).
    pub nradbase: usize,
    /// Radial functions R_nl, n < nradmax, l <= lmax (the functions of rank >= 2).
    pub nradmax: usize,
    pub lmax: usize,
    /// c_nlk, (nradmax, lmax + 1, nradbase) row-major; empty for c_nlk = delta_nk (a new
    /// pacemaker basis).
    #[serde(default)]
    pub crad: Vec<f64>,
}

impl Bond {
    pub(super) fn validate(&self) -> Result<(), String> {
        let rc = self.rcut;
        if !(rc.is_finite() && rc > 0.0) {
            return Err(format!(
                "rcut must be a positive number of Angstrom, got {rc}"
            ));
        }
        if !(self.dcut.is_finite() && (0.0..=rc).contains(&self.dcut)) {
            return Err(format!("dcut must be in [0, rcut], got {}", self.dcut));
        }
        if matches!(self.radbase, RadialBasis::ChebExpCos | RadialBasis::ChebPow)
            && !(self.lambda.is_finite() && self.lambda > 0.0)
        {
            return Err(format!(
                "lambda must be positive for {:?}, got {}",
                self.radbase, self.lambda
            ));
        }
        if !(self.r_in.is_finite() && self.delta_in.is_finite() && self.delta_in >= 0.0)
            || self.r_in < 0.0
            || self.r_in >= rc
        {
            return Err(format!(
                "r_in must be in [0, rcut) and delta_in >= 0, got {} and {}",
                self.r_in, self.delta_in
            ));
        }
        if self.nradbase == 0 || self.nradbase > MAX_N {
            return Err(format!(
                "nradbase must be 1 to {MAX_N}, got {}",
                self.nradbase
            ));
        }
        if self.nradmax > MAX_N {
            return Err(format!(
                "nradmax must be at most {MAX_N}, got {}",
                self.nradmax
            ));
        }
        if self.lmax > super::ylm::MAX_L {
            return Err(format!(
                "lmax must be at most {}, got {}",
                super::ylm::MAX_L,
                self.lmax
            ));
        }
        let want = self.nradmax * (self.lmax + 1) * self.nradbase;
        if !self.crad.is_empty() && self.crad.len() != want {
            return Err(format!(
                "crad must hold nradmax x (lmax + 1) x nradbase = {want} numbers (or none), got {}",
                self.crad.len()
            ));
        }
        if self.crad.iter().any(|c| !c.is_finite()) {
            return Err("crad must be finite".into());
        }
        Ok(())
    }

    /// g_k(r) and dg_k/dr, k < nradbase, into `g` and `dg`; false (and zeros) where the
    /// bond sees nothing (r >= r_c or inside the inner cutoff).
    pub(super) fn basis(&self, r: f64, g: &mut [f64], dg: &mut [f64]) -> bool {
        let nb = self.nradbase;
        let (g, dg) = (&mut g[..nb], &mut dg[..nb]);
        g.fill(0.0);
        dg.fill(0.0);
        if r >= self.rcut || r <= self.r_in - self.delta_in {
            return false;
        }
        let rc = self.rcut;
        match self.radbase {
            RadialBasis::ChebExpCos => {
                let lam = self.lambda;
                let (y1, y2) = ((-lam * r / rc).exp(), (-lam).exp());
                let x = 1.0 - 2.0 * (y1 - y2) / (1.0 - y2);
                let dx = 2.0 * (lam / rc) * y1 / (1.0 - y2);
                chebyshev(x, dx, 0, g, dg);
                g[0] = 1.0;
                dg[0] = 0.0;
                let pi = std::f64::consts::PI;
                let env = 0.5 * (1.0 + (pi * r / rc).cos());
                let denv = -0.5 * (pi * r / rc).sin() * pi / rc;
                product_rule(g, dg, env, denv);
                let r0 = rc - self.dcut;
                if self.dcut > 0.0 && r > r0 {
                    let t = pi * (r - r0) / self.dcut;
                    product_rule(
                        g,
                        dg,
                        0.5 * (1.0 + t.cos()),
                        -0.5 * t.sin() * pi / self.dcut,
                    );
                }
            }
            RadialBasis::ChebPow => {
                let lam = self.lambda;
                let y = 1.0 - r / rc;
                let ylm1 = y.powf(lam - 1.0);
                let x = 2.0 * (1.0 - ylm1 * y) - 1.0;
                let dx = 2.0 * lam / rc * ylm1;
                chebyshev(x, dx, 1, g, dg);
            }
            RadialBasis::SBessel => sbessel(r, rc, g, dg),
        }
        if self.delta_in > 0.0 && r < self.r_in {
            // 1 - P(r), P a quintic from 1 at r_in - delta_in to 0 at r_in
            let d = self.delta_in;
            let x = 1.0 - 2.0 * (1.0 + (r - self.r_in) / d);
            let p = 0.5 + 3.75 * (x / 4.0 - x.powi(3) / 6.0 + x.powi(5) / 20.0);
            let dp = -7.5 / d * (0.25 - x * x / 2.0 + x.powi(4) / 4.0);
            product_rule(g, dg, 1.0 - p, -dp);
        }
        true
    }

    /// R_nl and dR_nl/dr, (nradmax, lmax + 1), from g and dg.
    pub(super) fn radial(&self, g: &[f64], dg: &[f64], rad: &mut [f64], drad: &mut [f64]) {
        let (nb, nl) = (self.nradbase, self.lmax + 1);
        for n in 0..self.nradmax {
            for l in 0..nl {
                let k = n * nl + l;
                if self.crad.is_empty() {
                    (rad[k], drad[k]) = if n < nb { (g[n], dg[n]) } else { (0.0, 0.0) };
                } else {
                    let c = &self.crad[k * nb..(k + 1) * nb];
                    rad[k] = crate::linalg::dot(c, &g[..nb]);
                    drad[k] = crate::linalg::dot(c, &dg[..nb]);
                }
            }
        }
    }
}

/// The largest nradbase and nradmax.
pub const MAX_N: usize = 64;

fn product_rule(g: &mut [f64], dg: &mut [f64], f: f64, df: f64) {
    for (g, dg) in g.iter_mut().zip(dg.iter_mut()) {
        *dg = *dg * f + *g * df;
        *g *= f;
    }
}

/// g_k = (1 - T_(k + shift)(x)) / 2 and its r-derivative (dx = dx/dr), with the Chebyshev
/// polynomials of the first kind T and dT_k/dx = k U_(k-1) (U of the second kind).
fn chebyshev(x: f64, dx: f64, shift: usize, g: &mut [f64], dg: &mut [f64]) {
    let n = g.len() + shift;
    let mut t = [0.0; MAX_N + 2];
    let mut u = [0.0; MAX_N + 2];
    t[0] = 1.0;
    u[0] = 1.0;
    if n >= 1 {
        t[1] = x;
        u[1] = 2.0 * x;
    }
    for k in 1..n {
        t[k + 1] = 2.0 * x * t[k] - t[k - 1];
        u[k + 1] = 2.0 * x * u[k] - u[k - 1];
    }
    for (k, (g, dg)) in g.iter_mut().zip(dg.iter_mut()).enumerate() {
        let k = k + shift;
        let dt = if k == 0 { 0.0 } else { k as f64 * u[k - 1] };
        *g = 0.5 - 0.5 * t[k];
        *dg = -0.5 * dt * dx;
    }
}

fn sbessel(r: f64, rc: f64, g: &mut [f64], dg: &mut [f64]) {
    use std::f64::consts::PI;
    let sinc = |x: f64| {
        if x == 0.0 {
            (1.0, 0.0)
        } else {
            (x.sin() / x, (x.cos() * x - x.sin()) / (x * x))
        }
    };
    let f = |n: usize| {
        let n1 = (n + 1) as f64;
        let n2 = (n + 2) as f64;
        let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
        let pre = sign * 2f64.sqrt() * PI / rc.powf(1.5) * n1 * n2 / (n1 * n1 + n2 * n2).sqrt();
        let (a1, a2) = (n1 * PI / rc, n2 * PI / rc);
        let (s1, d1) = sinc(r * a1);
        let (s2, d2) = sinc(r * a2);
        (pre * (s1 + s2), pre * (d1 * a1 + d2 * a2))
    };
    (g[0], dg[0]) = f(0);
    let mut d_prev = 1.0;
    for n in 1..g.len() {
        let nf = n as f64;
        let e = nf * nf * (nf + 2.0).powi(2) / (4.0 * (nf + 1.0).powi(4) + 1.0);
        let d = 1.0 - e / d_prev;
        let (fv, fd) = f(n);
        let w = (e / d_prev).sqrt();
        g[n] = (fv + w * g[n - 1]) / d.sqrt();
        dg[n] = (fd + w * dg[n - 1]) / d.sqrt();
        d_prev = d;
    }
}
