//! The extended Kalman filter of n2p2 and RuNNer (Blank and Brown, J. Chemometrics 8, 391
//! (1994); Singraber et al., J. Chem. Theory Comput. 15, 3075 (2019)), decoupled per
//! element: the weights theta are the state, each energy or force component of a frame one
//! scalar observation h(theta) with Jacobian H = dh/dtheta. Per observation with error
//! e = target - h:
//!
//!   X_b = P_b H_b,  a = sum_b H_b . X_b + 1 / eta,
//!   theta_b += X_b e / a,  P_b -= X_b X_b^T / a,  P_b += q I,
//!
//! with P_b the covariance of element b's weights (P_b = I / epsilon at the start), and n2p2's
//! schedules q = max(q0 exp(-tau t), q_min), eta = min(eta0 exp(tau t), eta_max) over the
//! epochs t (n2p2 divides kalman_qtau and kalman_etatau by the updates per epoch and applies
//! them at every update: with its default tau = 2.302, q falls and eta rises tenfold per
//! epoch). Decoupling the elements (one P_b per network instead of one global P)
//! drops the cross-element covariances, as the decoupled EKF of Puskorius and Feldkamp
//! (1991) does: the cost per update falls from (sum n_b)^2 to sum n_b^2.
//!
//! Each update's Jacobian is one pass of `TrainingSet::frame_gradient` over the frame (the
//! value of h comes with it); the updates of one filter are sequential by nature, so a
//! committee's members run in parallel, and P is updated row-parallel.
//!
//! P is symmetric and stored as its lower triangle, row after row: an update reads and
//! writes P once, and that pass over memory is its cost, so half the storage is half the
//! time. P h then takes each stored entry twice (row r's dot product, and its mirror in
//! column r, added to a partial vector per block of rows; the partials are summed in row
//! order, so the result does not depend on the number of threads).

use rayon::prelude::*;

use super::{Functional, TrainingSet, Workspace};
use crate::error::{Error, Result};
use crate::models::network::Network;

/// Rows of P per parallel task in an update.
const ROWS_PER_TASK: usize = 64;

/// Settings of the filter (n2p2's keywords in brackets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanParams {
    /// P = I / epsilon at the start (kalman_epsilon).
    pub epsilon: f64,
    /// Process noise at the start and its floor (kalman_q0, kalman_qmin).
    pub q0: f64,
    pub q_min: f64,
    /// The learning rate at the start and its ceiling (kalman_eta, kalman_etamax).
    pub eta0: f64,
    pub eta_max: f64,
    /// Rate per epoch at which q falls and eta rises: by e^tau per epoch (kalman_qtau,
    /// kalman_etatau).
    pub tau: f64,
    /// Updates per epoch, the unit of the schedules' time.
    pub per_epoch: f64,
    /// Errors beyond +-max_error (in the observation's units) count as +-max_error: one
    /// outlier (a force of tens of eV/Angstrom at a rare close contact) then moves the
    /// weights no more than a large ordinary error would (infinite: no limit).
    pub max_error: f64,
}

impl KalmanParams {
    fn check(&self) -> Result<()> {
        let positive = [
            ("epsilon", self.epsilon),
            ("eta0", self.eta0),
            ("eta_max", self.eta_max),
            ("tau", self.tau),
            ("per_epoch", self.per_epoch),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(format!(
                    "the Kalman filter's {name} must be a positive number, got {v}"
                )));
            }
        }
        if !(self.max_error > 0.0) {
            return Err(Error::invalid(format!(
                "the Kalman filter's max_error must be positive (or infinite), got {}",
                self.max_error
            )));
        }
        for (name, v) in [("q0", self.q0), ("q_min", self.q_min)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(format!(
                    "the Kalman filter's {name} must be a number >= 0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

/// One filter: the covariance of each block of the state (one block per element's network).
#[derive(Debug, Clone)]
pub struct KalmanFilter {
    params: KalmanParams,
    blocks: Vec<usize>,
    /// Per block, the lower triangle of P_b, row r (entries 0..=r) at r (r + 1) / 2.
    covariance: Vec<Vec<f64>>,
    steps: u64,
}

/// One scheduled update: frame f, and either its energy per atom (`atom` None) or the force
/// component `axis` of `atom`, with its reference value `target` (eV/atom or eV/Angstrom),
/// observed in units of `unit` (the same units): the filter weighs errors in these units,
/// so a smaller unit weighs the observation more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    pub frame: usize,
    pub atom: Option<usize>,
    pub axis: usize,
    pub target: f64,
    pub unit: f64,
}

impl KalmanFilter {
    /// A filter over blocks of the given sizes, at P = I / epsilon.
    pub fn new(blocks: Vec<usize>, params: KalmanParams) -> Result<Self> {
        params.check()?;
        if blocks.is_empty() || blocks.contains(&0) {
            return Err(Error::invalid(format!(
                "a Kalman filter needs blocks of at least one weight, got {blocks:?}"
            )));
        }
        let covariance = blocks
            .iter()
            .map(|&n| {
                let mut p = vec![0.0; n * (n + 1) / 2];
                (0..n).for_each(|k| p[row_start(k) + k] = 1.0 / params.epsilon);
                p
            })
            .collect();
        Ok(KalmanFilter {
            params,
            blocks,
            covariance,
            steps: 0,
        })
    }

    pub fn params(&self) -> &KalmanParams {
        &self.params
    }

    pub fn blocks(&self) -> &[usize] {
        &self.blocks
    }

    /// Updates done.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Epochs done, the schedules' time.
    fn time(&self) -> f64 {
        self.steps as f64 / self.params.per_epoch
    }

    /// The process noise of the next update.
    pub fn q(&self) -> f64 {
        let p = &self.params;
        (p.q0 * (-self.time() * p.tau).exp()).max(p.q_min)
    }

    /// The learning rate of the next update.
    pub fn eta(&self) -> f64 {
        let p = &self.params;
        (p.eta0 * (self.time() * p.tau).exp()).min(p.eta_max)
    }

    /// P_b, (n_b x n_b) row-major.
    pub fn covariance(&self, b: usize) -> Vec<f64> {
        let n = self.blocks[b];
        let p = &self.covariance[b];
        let mut out = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..=r {
                let v = p[row_start(r) + c];
                out[r * n + c] = v;
                out[c * n + r] = v;
            }
        }
        out
    }

    /// Restores a saved state: the covariance of every block and the number of updates.
    pub fn restore(&mut self, covariance: Vec<Vec<f64>>, steps: u64) -> Result<()> {
        if covariance.len() != self.blocks.len()
            || covariance
                .iter()
                .zip(&self.blocks)
                .any(|(p, &n)| p.len() != n * n)
        {
            return Err(Error::invalid(format!(
                "the covariance does not fit blocks of {:?} weights",
                self.blocks
            )));
        }
        if covariance.iter().flatten().any(|x| !x.is_finite()) {
            return Err(Error::invalid("the covariance is not finite"));
        }
        self.covariance = covariance
            .iter()
            .zip(&self.blocks)
            .map(|(p, &n)| (0..n).flat_map(|r| p[r * n..r * n + r + 1].iter().copied()).collect())
            .collect();
        self.steps = steps;
        Ok(())
    }

    /// X_b = P_b H_b for each block of the Jacobian `h` (None where H_b = 0: an element
    /// absent from the frame, with nothing to learn there). One pass over P.
    pub fn project(&self, h: &[f64]) -> Projection {
        let mut start = 0;
        let mut xs = Vec::with_capacity(self.blocks.len());
        for (b, &n) in self.blocks.iter().enumerate() {
            let hb = &h[start..start + n];
            xs.push(if hb.iter().all(|&x| x == 0.0) {
                None
            } else {
                let p = &self.covariance[b];
                let partials: Vec<Vec<f64>> = split_rows(p, n)
                    .into_par_iter()
                    .map(|(r0, rows)| {
                        let mut y = Vec::new();
                        for (k, row) in packed_rows(rows, r0).enumerate() {
                            accumulate_row(r0 + k, row, hb, &mut y);
                        }
                        y
                    })
                    .collect();
                Some(sum_partials(partials, n))
            });
            start += n;
        }
        Projection(xs)
    }

    /// The first half of an update by an observation with Jacobian `h`, its projection
    /// `xs` (`project(h)`) and error `error` = target - h(theta): theta += X e / a. Returns
    /// a = H . X + 1 / eta, which `finish` needs.
    pub fn correct(&self, theta: &mut [f64], h: &[f64], xs: &Projection, error: f64) -> f64 {
        let total: usize = self.blocks.iter().sum();
        assert_eq!(theta.len(), total);
        assert_eq!(h.len(), total);
        let mut a = 1.0 / self.eta();
        let mut start = 0;
        for (&n, x) in self.blocks.iter().zip(&xs.0) {
            if let Some(x) = x {
                a += crate::linalg::dot(&h[start..start + n], x);
            }
            start += n;
        }
        let mut start = 0;
        for (&n, x) in self.blocks.iter().zip(&xs.0) {
            if let Some(x) = x {
                let step = error / a;
                theta[start..start + n]
                    .iter_mut()
                    .zip(x)
                    .for_each(|(t, x)| *t += x * step);
            }
            start += n;
        }
        a
    }

    /// The second half: P_b -= X_b X_b^T / a, P_b += q I; and, in the same pass over P
    /// (the update is bound by reading P from memory), the projection of the next
    /// observation's Jacobian `next` if there is one. The result is the same, bit for bit,
    /// as `project(next)` after the update.
    pub fn finish(&mut self, xs: &Projection, a: f64, next: Option<&[f64]>) -> Option<Projection> {
        let q = self.q();
        let mut out = Vec::with_capacity(self.blocks.len());
        let mut start = 0;
        for (b, &n) in self.blocks.iter().enumerate() {
            let p = &mut self.covariance[b];
            let x = xs.0[b].as_deref();
            let h = next
                .map(|h| &h[start..start + n])
                .filter(|h| h.iter().any(|&v| v != 0.0));
            let partials: Vec<Vec<f64>> = split_rows_mut(p, n)
                .into_par_iter()
                .map(|(r0, rows)| {
                    let mut y = Vec::new();
                    let mut offset = 0;
                    for r in r0..r0 + rows_in(rows.len(), r0) {
                        let row = &mut rows[offset..offset + r + 1];
                        offset += r + 1;
                        if let Some(x) = x {
                            let s = x[r] / a;
                            row.iter_mut().zip(x).for_each(|(p, x)| *p -= s * x);
                        }
                        row[r] += q;
                        if let Some(h) = h {
                            accumulate_row(r, row, h, &mut y);
                        }
                    }
                    y
                })
                .collect();
            out.push(h.map(|_| sum_partials(partials, n)));
            start += n;
        }
        self.steps += 1;
        next.map(|_| Projection(out))
    }

    /// One whole update of `theta` (the blocks concatenated) by an observation with
    /// Jacobian `h` and error `error` = target - h(theta).
    pub fn update(&mut self, theta: &mut [f64], h: &[f64], error: f64) {
        let xs = self.project(h);
        let a = self.correct(theta, h, &xs, error);
        self.finish(&xs, a, None);
    }
}

/// Offset of row r in a packed lower triangle.
fn row_start(r: usize) -> usize {
    r * (r + 1) / 2
}

/// The rows r0..r1 of each block of `ROWS_PER_TASK` rows, as slices of the packed triangle
/// (a fixed partition: the same for every thread count).
fn split_rows(p: &[f64], n: usize) -> Vec<(usize, &[f64])> {
    (0..n)
        .step_by(ROWS_PER_TASK)
        .map(|r0| {
            let r1 = (r0 + ROWS_PER_TASK).min(n);
            (r0, &p[row_start(r0)..row_start(r1)])
        })
        .collect()
}

fn split_rows_mut(mut p: &mut [f64], n: usize) -> Vec<(usize, &mut [f64])> {
    let mut out = Vec::new();
    for r0 in (0..n).step_by(ROWS_PER_TASK) {
        let r1 = (r0 + ROWS_PER_TASK).min(n);
        let (head, tail) = p.split_at_mut(row_start(r1) - row_start(r0));
        out.push((r0, head));
        p = tail;
    }
    out
}

/// The number of rows from row r0 in `len` packed entries.
fn rows_in(len: usize, r0: usize) -> usize {
    let r1 = (0..).map(|k| r0 + k).find(|&r| row_start(r) - row_start(r0) >= len).unwrap();
    r1 - r0
}

fn packed_rows(rows: &[f64], r0: usize) -> impl Iterator<Item = &[f64]> {
    let mut offset = 0;
    (r0..r0 + rows_in(rows.len(), r0)).map(move |r| {
        let row = &rows[offset..offset + r + 1];
        offset += r + 1;
        row
    })
}

/// Row r of P (its lower-triangle part `row`, entries 0..=r) into y = P h: its own dot
/// product, and its mirror P[c][r] = P[r][c] for c < r in the entries of column r.
fn accumulate_row(r: usize, row: &[f64], h: &[f64], y: &mut Vec<f64>) {
    if y.len() < r + 1 {
        y.resize(r + 1, 0.0);
    }
    y[r] += crate::linalg::dot(row, &h[..=r]);
    let hr = h[r];
    if hr != 0.0 {
        y[..r].iter_mut().zip(&row[..r]).for_each(|(y, p)| *y += p * hr);
    }
}

/// The partial vectors of the row blocks, summed in block order.
fn sum_partials(partials: Vec<Vec<f64>>, n: usize) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for part in partials {
        y[..part.len()].iter_mut().zip(&part).for_each(|(y, p)| *y += p);
    }
    y
}

/// X_b = P_b H_b per block of a Jacobian (None where H_b = 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection(Vec<Option<Vec<f64>>>);

/// One committee member's state through an epoch.
pub struct Member<'a> {
    /// One network per species index (their weights are overwritten from `theta`).
    pub networks: Vec<Network>,
    pub theta: Vec<f64>,
    pub filter: &'a mut KalmanFilter,
    pub schedule: &'a [Update],
}

impl TrainingSet {
    /// Runs each member's schedule of updates, the members in parallel.
    pub fn kalman_epochs(&self, members: &mut [Member]) -> Result<()> {
        for (k, m) in members.iter().enumerate() {
            let member = |e: Error| e.context(&format!("committee member {k}"));
            self.check_networks(&m.networks).map_err(member)?;
            let (_, total) = Self::parameter_offsets(&m.networks);
            if m.theta.len() != total || m.filter.blocks().iter().sum::<usize>() != total {
                return Err(member(Error::invalid(format!(
                    "the networks have {total} weights, theta {} and the filter {}",
                    m.theta.len(),
                    m.filter.blocks().iter().sum::<usize>()
                ))));
            }
            for u in m.schedule {
                if u.frame >= self.n_frames() {
                    return Err(member(Error::invalid(format!(
                        "an update of frame {} (the set has {})",
                        u.frame,
                        self.n_frames()
                    ))));
                }
                if let Some(i) = u.atom {
                    if i >= self.n_atoms(u.frame) || u.axis > 2 {
                        return Err(member(Error::invalid(format!(
                            "a force update of atom {i} axis {} in frame {} of {} atoms",
                            u.axis,
                            u.frame,
                            self.n_atoms(u.frame)
                        ))));
                    }
                }
                if !u.target.is_finite() || !(u.unit.is_finite() && u.unit > 0.0) {
                    return Err(member(Error::invalid(format!(
                        "an update of frame {} needs a finite target and a positive unit, got \
                         {} and {}",
                        u.frame, u.target, u.unit
                    ))));
                }
            }
        }
        let results: Vec<Result<()>> = members
            .par_iter_mut()
            .map(|m| self.kalman_member(m))
            .collect();
        results.into_iter().collect()
    }

    fn kalman_member(&self, m: &mut Member) -> Result<()> {
        let (offsets, total) = Self::parameter_offsets(&m.networks);
        let mut ws = Workspace::default();
        let mut displacement = Vec::new();
        // each update's Jacobian needs the weights after the one before, but not its
        // covariance: it is projected in the same pass over P that finishes that update
        let mut observe = |m: &mut Member, u: &Update| -> Result<(f64, Vec<f64>)> {
            for (s, net) in m.networks.iter_mut().enumerate() {
                net.set_parameters(&m.theta[offsets[s]..offsets[s] + net.n_parameters()])
                    .map_err(|e| e.context("the Kalman filter diverged"))?;
            }
            let n = self.n_atoms(u.frame);
            let h = match u.atom {
                None => Functional {
                    alpha: 1.0 / (n as f64 * u.unit),
                    displacement: &[],
                    virial: [0.0; 6],
                },
                Some(i) => {
                    // h = sum_k d_k . dE/dr_k = F_ia / unit for d = -e_ia / unit
                    displacement.clear();
                    displacement.resize(n, [0.0; 3]);
                    displacement[i][u.axis] = -1.0 / u.unit;
                    Functional {
                        alpha: 0.0,
                        displacement: &displacement,
                        virial: [0.0; 6],
                    }
                }
            };
            let (value, jacobian) =
                self.frame_observation(&m.networks, &offsets, total, u.frame, &h, &mut ws);
            let limit = m.filter.params().max_error;
            Ok(((u.target / u.unit - value).clamp(-limit, limit), jacobian))
        };
        let Some(first) = m.schedule.first() else {
            return Ok(());
        };
        let (mut error, mut jacobian) = observe(m, first)?;
        let mut xs = m.filter.project(&jacobian);
        for k in 0..m.schedule.len() {
            let a = m.filter.correct(&mut m.theta, &jacobian, &xs, error);
            let next = match m.schedule.get(k + 1) {
                Some(u) => Some(observe(m, u)?),
                None => None,
            };
            match next {
                Some((e, h)) => {
                    xs = m.filter.finish(&xs, a, Some(&h)).expect("a next projection");
                    (error, jacobian) = (e, h);
                }
                None => {
                    m.filter.finish(&xs, a, None);
                }
            }
        }
        if let Some(k) = m.theta.iter().position(|t| !t.is_finite()) {
            return Err(Error::invalid(format!(
                "the Kalman filter diverged: weight {k} is not finite (lower eta_max or raise \
                 epsilon)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
