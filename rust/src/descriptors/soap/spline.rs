//! The radial integral tabulated on a uniform grid over [0, cutoff] and interpolated by
//! quintic Hermite polynomials (values, first and second derivatives at the nodes).
//!
//! featomic splines its radial integral too (cubic Hermite, accuracy 1e-8 by default). The
//! exact integral costs three 1F1 series per (l, n) and distance; the spline costs a few
//! multiply-adds. Quintic rather than cubic pieces make the derivative, which the gradients
//! use, as accurate as the values on a grid of a few hundred points. The grid is refined
//! until the spline agrees with the exact integral at every interval midpoint to within
//! VALUE_TOLERANCE (values) and DERIVATIVE_TOLERANCE (first derivatives), or, for large n_max
//! where the exact values carry rounding noise near 1e-12, to the best accuracy a grid
//! reaches, which must be within ACCEPTED_VALUE_ERROR and ACCEPTED_DERIVATIVE_ERROR.

use rayon::prelude::*;

use super::radial::RadialIntegral;
use crate::error::{Error, Result};

/// Largest absolute error allowed at the midpoints, in the units of I (Angstrom^{-3/2}
/// times the unit-norm density: values are of order one).
pub const VALUE_TOLERANCE: f64 = 1e-11;
/// The same for dI/dr, 1/Angstrom.
pub const DERIVATIVE_TOLERANCE: f64 = 1e-10;
/// Where rounding in the exact integral keeps the spline from reaching the tolerances above,
/// the best grid is accepted when it is within these.
pub const ACCEPTED_VALUE_ERROR: f64 = 1e-10;
pub const ACCEPTED_DERIVATIVE_ERROR: f64 = 1e-9;
/// Finest grid tried before giving up.
pub const MAX_INTERVALS: usize = 1 << 16;

#[derive(Debug, Clone)]
pub struct RadialSpline {
    /// Grid spacing, Angstrom.
    h: f64,
    n_intervals: usize,
    /// Values per node: (l_max + 1) * n_max.
    width: usize,
    /// [node][f, f', f''][width]
    nodes: Vec<f64>,
}

impl RadialSpline {
    pub fn new(integral: &RadialIntegral, cutoff: f64, atom_sigma: f64) -> Result<Self> {
        let width = integral.size();
        // start at a quarter of the narrowest feature: the atom width or the first GTO width
        let narrowest = atom_sigma.min(cutoff / integral.basis.n_max as f64);
        let mut n_intervals = ((4.0 * cutoff / narrowest).ceil() as usize).max(4);
        let mut best: Option<(f64, f64, f64, RadialSpline)> = None;
        loop {
            // the nodes, once per node and once concatenated
            let floats = 2 * (n_intervals as u128 + 1) * 3 * width as u128;
            crate::descriptors::ensure_fits(crate::descriptors::bytes_of::<f64>(floats), || {
                format!(
                    "the SOAP radial table ({n_intervals} intervals of {width} values: n_max {}, l_max {})",
                    integral.basis.n_max,
                    width / integral.basis.n_max - 1
                )
            })?;
            let h = cutoff / n_intervals as f64;
            // node i holds I, I', I'' at i h; the exact values are independent per node, so
            // they are computed in parallel (a few thousand 1F1 series per node)
            let exact = |r: f64| -> Result<Vec<f64>> {
                let mut out = vec![0.0; 3 * width];
                let (v, rest) = out.split_at_mut(width);
                let (d1, d2) = rest.split_at_mut(width);
                integral.compute(r, v, d1, d2)?;
                Ok(out)
            };
            let nodes: Vec<Vec<f64>> = (0..=n_intervals)
                .into_par_iter()
                .map(|i| exact(i as f64 * h))
                .collect::<Result<_>>()?;
            let spline = RadialSpline {
                h,
                n_intervals,
                width,
                nodes: nodes.concat(),
            };
            let errors: Vec<(f64, f64)> = (0..n_intervals)
                .into_par_iter()
                .map(|i| {
                    let r = (i as f64 + 0.5) * h;
                    let e = exact(r)?;
                    let (mut sv, mut sd) = (vec![0.0; width], vec![0.0; width]);
                    spline.evaluate(r, &mut sv, Some(&mut sd));
                    let worst = |s: &[f64], e: &[f64]| {
                        s.iter()
                            .zip(e)
                            .map(|(s, e)| (s - e).abs())
                            .fold(0.0, f64::max)
                    };
                    Ok((worst(&sv, &e[..width]), worst(&sd, &e[width..2 * width])))
                })
                .collect::<Result<_>>()?;
            let worst_value = errors.iter().map(|e| e.0).fold(0.0, f64::max);
            let worst_derivative = errors.iter().map(|e| e.1).fold(0.0, f64::max);
            let score =
                (worst_value / VALUE_TOLERANCE).max(worst_derivative / DERIVATIVE_TOLERANCE);
            if score <= 1.0 {
                return Ok(spline);
            }
            // refining stops helping once rounding in the exact values (the orthonormalisation
            // of large bases cancels digits) dominates: it then only amplifies their noise in
            // the derivative
            let improved = best.as_ref().is_none_or(|b| score < b.0);
            if improved {
                best = Some((score, worst_value, worst_derivative, spline));
            }
            n_intervals *= 2;
            if !improved || n_intervals > MAX_INTERVALS {
                break;
            }
        }
        match best {
            Some((_, value, derivative, spline))
                if value <= ACCEPTED_VALUE_ERROR && derivative <= ACCEPTED_DERIVATIVE_ERROR =>
            {
                Ok(spline)
            }
            _ => Err(Error::invalid(format!(
                "cannot tabulate the radial integral to {ACCEPTED_VALUE_ERROR:e}: atom_sigma is \
                 too small for this cutoff, or n_max too large (the GTO basis is ill-conditioned \
                 beyond n_max ~ 12: rounding in its orthonormalisation exceeds that)"
            ))),
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// I(r) into `value` and, when given, dI/dr into `derivative`; 0 <= r <= cutoff.
    #[inline]
    pub fn evaluate(&self, r: f64, value: &mut [f64], derivative: Option<&mut [f64]>) {
        let w = self.width;
        let x = r / self.h;
        let i = (x as usize).min(self.n_intervals - 1);
        let t = x - i as f64;
        let (t2, t3) = (t * t, t * t * t);
        let (t4, t5) = (t3 * t, t3 * t2);
        let h = self.h;
        // quintic Hermite basis: value, slope and curvature at each end
        let b = [
            1.0 - 10.0 * t3 + 15.0 * t4 - 6.0 * t5,
            h * (t - 6.0 * t3 + 8.0 * t4 - 3.0 * t5),
            h * h * 0.5 * (t2 - 3.0 * t3 + 3.0 * t4 - t5),
            10.0 * t3 - 15.0 * t4 + 6.0 * t5,
            h * (-4.0 * t3 + 7.0 * t4 - 3.0 * t5),
            h * h * 0.5 * (t3 - 2.0 * t4 + t5),
        ];
        let block = &self.nodes[i * 3 * w..(i + 2) * 3 * w];
        combine(&b, block, value);
        if let Some(derivative) = derivative {
            // d/dr = (1/h) d/dt
            let d = [
                (-30.0 * t2 + 60.0 * t3 - 30.0 * t4) / h,
                1.0 - 18.0 * t2 + 32.0 * t3 - 15.0 * t4,
                h * 0.5 * (2.0 * t - 9.0 * t2 + 12.0 * t3 - 5.0 * t4),
                (30.0 * t2 - 60.0 * t3 + 30.0 * t4) / h,
                -12.0 * t2 + 28.0 * t3 - 15.0 * t4,
                h * 0.5 * (3.0 * t2 - 8.0 * t3 + 5.0 * t4),
            ];
            combine(&d, block, derivative);
        }
    }
}

/// out = sum_k weights[k] * part k of `block`, the six node arrays (f, f', f'' at both ends)
/// of one interval.
#[inline]
fn combine(weights: &[f64; 6], block: &[f64], out: &mut [f64]) {
    let w = out.len();
    let (f0, rest) = block.split_at(w);
    let (g0, rest) = rest.split_at(w);
    let (c0, rest) = rest.split_at(w);
    let (f1, rest) = rest.split_at(w);
    let (g1, c1) = rest.split_at(w);
    for k in 0..w {
        out[k] = weights[0] * f0[k]
            + weights[1] * g0[k]
            + weights[2] * c0[k]
            + weights[3] * f1[k]
            + weights[4] * g1[k]
            + weights[5] * c1[k];
    }
}
