//! The per-atom work: the one-particle basis A of a neighbourhood, the functions B as sums
//! of products of its entries, their adjoints dB/dA, and the pass over the pairs that turns
//! those into derivatives with respect to the positions.
//!
//! A is stored for m >= 0 only (A_l,-m = (-1)^m conj(A_lm), the radial functions being
//! real); a function's product reads an entry as A, conj A or -conj A, and its adjoint is
//! folded onto the m >= 0 entries, so that dB = Re sum_e G_e dA_e over those entries.

use num_complex::Complex64;

use super::{coupling, ylm, Ace, AceParams, BasisFunction};
use crate::descriptors::{Env, VOIGT};

const ZERO: Complex64 = Complex64::new(0.0, 0.0);

/// Where each entry of A1 and A lives: A1[mu, n] at mu nradbase + n, A[mu, n, l, m >= 0]
/// at (mu nradmax + n) n_lm + l (l + 1) / 2 + m, with the largest sizes of any bond.
#[derive(Debug, Clone)]
pub struct Layout {
    n_species: usize,
    nradbase: usize,
    nradmax: usize,
    lmax: usize,
    n_lm: usize,
}

impl Layout {
    pub fn new(p: &AceParams) -> Self {
        let nradbase = p.bonds.iter().map(|b| b.nradbase).max().unwrap_or(1);
        let nradmax = p.bonds.iter().map(|b| b.nradmax).max().unwrap_or(0);
        let lmax = p.bonds.iter().map(|b| b.lmax).max().unwrap_or(0);
        Layout {
            n_species: p.species.len(),
            nradbase,
            nradmax,
            lmax,
            n_lm: ylm::n_entries(lmax),
        }
    }

    pub fn n_a1(&self) -> usize {
        self.n_species * self.nradbase
    }

    pub fn n_entries(&self) -> usize {
        self.n_species * self.per_species()
    }

    fn per_species(&self) -> usize {
        self.nradmax * self.n_lm
    }

    fn entry(&self, mu: usize, n: usize, l: usize, m: usize) -> usize {
        (mu * self.nradmax + n) * self.n_lm + ylm::index(l, m)
    }
}

/// How a product reads an entry of A: A_lm for m >= 0, (-1)^m conj(A_l|m|) for m < 0.
#[derive(Debug, Clone, Copy)]
pub(super) enum Read {
    Plain,
    Conj,
    MinusConj,
}

/// One function, ready to evaluate.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// B = A1[a1]; its neighbours' species and radial index.
    Rank1 { a1: usize, species: usize, n: usize },
    Product {
        rank: usize,
        coeffs: Vec<f64>,
        /// Per combination, `rank` entries of A and how they are read.
        entries: Vec<u32>,
        reads: Vec<Read>,
        /// The distinct entries, sorted, and per combination slot its position among them.
        distinct: Vec<u32>,
        positions: Vec<u32>,
    },
}

impl Compiled {
    pub fn new(f: &BasisFunction, layout: &Layout) -> Result<Self, String> {
        let rank = f.ns.len();
        if rank == 1 {
            let (mu, n) = (f.mus[0], f.ns[0] - 1);
            return Ok(Compiled::Rank1 {
                a1: mu * layout.nradbase + n,
                species: mu,
                n,
            });
        }
        let (ms, coeffs) = coupling::half_combinations(&f.ls, &f.lint);
        if coeffs.is_empty() {
            return Err(format!(
                "ls {:?} with intermediates {:?} couple to no invariant (check the triangle conditions of every node)",
                f.ls, f.lint
            ));
        }
        let mut entries = Vec::with_capacity(ms.len());
        let mut reads = Vec::with_capacity(ms.len());
        for combination in ms.chunks(rank) {
            for (t, &m) in combination.iter().enumerate() {
                let e = layout.entry(f.mus[t], f.ns[t] - 1, f.ls[t], m.unsigned_abs() as usize);
                entries.push(e as u32);
                reads.push(match (m < 0, m % 2 != 0) {
                    (false, _) => Read::Plain,
                    (true, false) => Read::Conj,
                    (true, true) => Read::MinusConj,
                });
            }
        }
        let mut distinct = entries.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let positions = entries
            .iter()
            .map(|e| distinct.binary_search(e).unwrap() as u32)
            .collect();
        Ok(Compiled::Product {
            rank,
            coeffs,
            entries,
            reads,
            distinct,
            positions,
        })
    }

    /// Entries of its adjoint (0 for rank 1).
    pub fn n_adjoint(&self) -> usize {
        match self {
            Compiled::Rank1 { .. } => 0,
            Compiled::Product { distinct, .. } => distinct.len(),
        }
    }
}

fn read(a: &[Complex64], e: u32, how: Read) -> Complex64 {
    let v = a[e as usize];
    match how {
        Read::Plain => v,
        Read::Conj => v.conj(),
        Read::MinusConj => -v.conj(),
    }
}

/// One thread's scratch, reused from atom to atom.
pub struct Workspace {
    a1: Vec<f64>,
    a: Vec<Complex64>,
    g: Vec<f64>,
    dg: Vec<f64>,
    rad: Vec<f64>,
    drad: Vec<f64>,
    y: Vec<Complex64>,
    dy: Vec<[Complex64; 3]>,
    /// Per function of the current centre, its adjoint over its distinct entries
    /// (flattened; `adjoint_at` offsets).
    adjoint: Vec<Complex64>,
    adjoint_at: Vec<usize>,
    /// One pair's dA/dr_ij over the entries of its species.
    da: Vec<[Complex64; 3]>,
    /// The backprop weights of A1 and A.
    w1: Vec<f64>,
    wa: Vec<Complex64>,
    slope: Vec<f64>,
}

impl Workspace {
    pub fn new(layout: &Layout, centres: &[Vec<Compiled>]) -> Self {
        let most_adjoint = centres
            .iter()
            .map(|c| c.iter().map(Compiled::n_adjoint).sum::<usize>())
            .max()
            .unwrap_or(0);
        let most_functions = centres.iter().map(Vec::len).max().unwrap_or(0);
        let radial = layout.nradmax * (layout.lmax + 1);
        Workspace {
            a1: vec![0.0; layout.n_a1()],
            a: vec![ZERO; layout.n_entries()],
            g: vec![0.0; layout.nradbase],
            dg: vec![0.0; layout.nradbase],
            rad: vec![0.0; radial],
            drad: vec![0.0; radial],
            y: vec![ZERO; layout.n_lm],
            dy: vec![[ZERO; 3]; layout.n_lm],
            adjoint: vec![ZERO; most_adjoint],
            adjoint_at: vec![0; most_functions + 1],
            da: vec![[ZERO; 3]; layout.per_species()],
            w1: vec![0.0; layout.n_a1()],
            wa: vec![ZERO; layout.n_entries()],
            slope: vec![0.0; most_functions],
        }
    }
}

/// A1 and A of atom i.
fn density(d: &Ace, env: &Env, i: usize, ws: &mut Workspace) {
    let c = env.types[i];
    let layout = &d.layout;
    ws.a1.fill(0.0);
    ws.a.fill(ZERO);
    for p in env.list.pairs_of(i) {
        let mu = env.types[env.list.neighbors[p]];
        let bond = d.bond(c, mu);
        let r = env.list.distances[p];
        if !bond.basis(r, &mut ws.g, &mut ws.dg) {
            continue;
        }
        let a1 = &mut ws.a1[mu * layout.nradbase..];
        for k in 0..bond.nradbase {
            a1[k] += ws.g[k];
        }
        if bond.nradmax == 0 {
            continue;
        }
        bond.radial(&ws.g, &ws.dg, &mut ws.rad, &mut ws.drad);
        ylm::ylm(env.list.vectors[p], bond.lmax, &mut ws.y, None);
        let nl = bond.lmax + 1;
        for n in 0..bond.nradmax {
            let base = layout.entry(mu, n, 0, 0);
            for l in 0..nl {
                let r = ws.rad[n * nl + l];
                let k = ylm::index(l, 0);
                for m in 0..=l {
                    ws.a[base + k + m] += ws.y[k + m] * r;
                }
            }
        }
    }
}

/// B of the centre's functions into `out` (zeros beyond them).
fn write_values(funcs: &[Compiled], ws: &Workspace, out: &mut [f64]) {
    out.fill(0.0);
    for (f, x) in funcs.iter().zip(out.iter_mut()) {
        *x = match f {
            Compiled::Rank1 { a1, .. } => ws.a1[*a1],
            Compiled::Product {
                rank,
                coeffs,
                entries,
                reads,
                ..
            } => {
                let mut total = 0.0;
                for (k, &c) in coeffs.iter().enumerate() {
                    let slots = k * rank..(k + 1) * rank;
                    let mut p = Complex64::new(c, 0.0);
                    for s in slots {
                        p *= read(&ws.a, entries[s], reads[s]);
                    }
                    total += p.re;
                }
                total
            }
        };
    }
}

/// Each function's adjoint G over its distinct entries: dB = Re sum_e G_e dA_e.
fn adjoints(funcs: &[Compiled], ws: &mut Workspace) {
    let mut at = 0;
    ws.adjoint_at[0] = 0;
    for (k, f) in funcs.iter().enumerate() {
        if let Compiled::Product {
            rank,
            coeffs,
            entries,
            reads,
            distinct,
            positions,
        } = f
        {
            let g = &mut ws.adjoint[at..at + distinct.len()];
            g.fill(ZERO);
            let mut values = [ZERO; super::MAX_RANK];
            let mut after = [ZERO; super::MAX_RANK + 1];
            for (c, &coeff) in coeffs.iter().enumerate() {
                let slots = c * rank..(c + 1) * rank;
                for (t, s) in slots.clone().enumerate() {
                    values[t] = read(&ws.a, entries[s], reads[s]);
                }
                after[*rank] = Complex64::new(coeff, 0.0);
                for t in (0..*rank).rev() {
                    after[t] = after[t + 1] * values[t];
                }
                let mut before = Complex64::new(1.0, 0.0);
                for (t, s) in slots.enumerate() {
                    let partial = before * after[t + 1];
                    // d Re(partial v)/dA for v = A, conj A, -conj A
                    g[positions[s] as usize] += match reads[s] {
                        Read::Plain => partial,
                        Read::Conj => partial.conj(),
                        Read::MinusConj => -partial.conj(),
                    };
                    before *= values[t];
                }
            }
            at += distinct.len();
        }
        ws.adjoint_at[k + 1] = at;
    }
}

/// The radial functions, harmonics and their derivatives of pair p: false when the bond
/// does not see it. dA/dr_ij of the pair's entries into ws.da.
fn pair_derivatives(d: &Ace, env: &Env, c: usize, p: usize, ws: &mut Workspace) -> bool {
    let mu = env.types[env.list.neighbors[p]];
    let bond = d.bond(c, mu);
    let r = env.list.distances[p];
    if !bond.basis(r, &mut ws.g, &mut ws.dg) {
        return false;
    }
    if bond.nradmax == 0 {
        return true;
    }
    bond.radial(&ws.g, &ws.dg, &mut ws.rad, &mut ws.drad);
    let v = env.list.vectors[p];
    ylm::ylm(v, bond.lmax, &mut ws.y, Some(&mut ws.dy));
    let u = [v[0] / r, v[1] / r, v[2] / r];
    let layout = &d.layout;
    let nl = bond.lmax + 1;
    ws.da.fill([ZERO; 3]);
    for n in 0..bond.nradmax {
        for l in 0..nl {
            let (rv, dr) = (ws.rad[n * nl + l], ws.drad[n * nl + l]);
            for m in 0..=l {
                let k = ylm::index(l, m);
                let (y, dy) = (ws.y[k], ws.dy[k]);
                ws.da[n * layout.n_lm + k] = std::array::from_fn(|a| y * (dr * u[a]) + dy[a] * rv);
            }
        }
    }
    true
}

pub(super) fn values(d: &Ace, env: &Env, i: usize, ws: &mut Workspace, out: &mut [f64]) {
    density(d, env, i, ws);
    write_values(&d.centres[env.types[i]], ws, out);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gradients(
    d: &Ace,
    env: &Env,
    i: usize,
    ws: &mut Workspace,
    rows: &[usize],
    values: &mut [f64],
    gradients: &mut [f64],
    virial: &mut [f64],
) {
    let c = env.types[i];
    let funcs = &d.centres[c];
    let nf = d.n_features;
    density(d, env, i, ws);
    write_values(funcs, ws, values);
    adjoints(funcs, ws);
    let centre = rows.binary_search(&i).expect("the centre is a row");
    let per_species = d.layout.per_species();
    for p in env.list.pairs_of(i) {
        if !pair_derivatives(d, env, c, p, ws) {
            continue;
        }
        let j = env.list.neighbors[p];
        let mu = env.types[j];
        let row = rows
            .binary_search(&j)
            .expect("every neighbour within reach is a row");
        let v = env.list.vectors[p];
        let r = env.list.distances[p];
        let lo = (mu * per_species) as u32;
        for (k, f) in funcs.iter().enumerate() {
            let grad: [f64; 3] = match f {
                Compiled::Rank1 { species, n, .. } => {
                    if *species != mu {
                        continue;
                    }
                    std::array::from_fn(|a| ws.dg[*n] * v[a] / r)
                }
                Compiled::Product { distinct, .. } => {
                    let g = &ws.adjoint[ws.adjoint_at[k]..ws.adjoint_at[k + 1]];
                    let mut out = [0.0; 3];
                    let mut any = false;
                    for (e, gv) in distinct.iter().zip(g) {
                        if *e < lo || *e >= lo + per_species as u32 {
                            continue;
                        }
                        any = true;
                        let da = &ws.da[(*e - lo) as usize];
                        for a in 0..3 {
                            out[a] += (gv * da[a]).re;
                        }
                    }
                    if !any {
                        continue;
                    }
                    out
                }
            };
            for a in 0..3 {
                gradients[(row * 3 + a) * nf + k] += grad[a];
                gradients[(centre * 3 + a) * nf + k] -= grad[a];
            }
            for (w, &(a, b)) in VOIGT.iter().enumerate() {
                virial[w * nf + k] -= grad[a] * v[b];
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backprop(
    d: &Ace,
    env: &Env,
    i: usize,
    ws: &mut Workspace,
    values: &mut [f64],
    slope: &mut dyn FnMut(&[f64], &mut [f64]),
    forces: &mut Vec<(usize, [f64; 3])>,
    virial: &mut [f64; 6],
) {
    let c = env.types[i];
    let funcs = &d.centres[c];
    let layout = &d.layout;
    density(d, env, i, ws);
    write_values(funcs, ws, values);
    let mut s = std::mem::take(&mut ws.slope);
    s.resize(d.n_features, 0.0);
    s.fill(0.0);
    slope(values, &mut s);
    adjoints(funcs, ws);
    // the weights of A1 and A: sum over functions of dE/dB dB/dA
    ws.w1.fill(0.0);
    ws.wa.fill(ZERO);
    for (k, f) in funcs.iter().enumerate() {
        match f {
            Compiled::Rank1 { a1, .. } => ws.w1[*a1] += s[k],
            Compiled::Product { distinct, .. } => {
                let g = &ws.adjoint[ws.adjoint_at[k]..ws.adjoint_at[k + 1]];
                for (e, gv) in distinct.iter().zip(g) {
                    ws.wa[*e as usize] += gv * s[k];
                }
            }
        }
    }
    ws.slope = s;
    let mut centre = [0.0; 3];
    for p in env.list.pairs_of(i) {
        let j = env.list.neighbors[p];
        let mu = env.types[j];
        let bond = d.bond(c, mu);
        let r = env.list.distances[p];
        if !bond.basis(r, &mut ws.g, &mut ws.dg) {
            continue;
        }
        let v = env.list.vectors[p];
        let u = [v[0] / r, v[1] / r, v[2] / r];
        // dE/dr_ij = u sum_n w1 g'_n + sum_nlm Re(w (R' u Y + R grad Y))
        let mut radial_part: f64 = (0..bond.nradbase)
            .map(|k| ws.w1[mu * layout.nradbase + k] * ws.dg[k])
            .sum();
        let mut g = [0.0; 3];
        if bond.nradmax > 0 {
            bond.radial(&ws.g, &ws.dg, &mut ws.rad, &mut ws.drad);
            ylm::ylm(v, bond.lmax, &mut ws.y, Some(&mut ws.dy));
            let nl = bond.lmax + 1;
            for l in 0..nl {
                for m in 0..=l {
                    let k = ylm::index(l, m);
                    let mut sum_r = ZERO;
                    for n in 0..bond.nradmax {
                        let w = ws.wa[layout.entry(mu, n, l, m)];
                        sum_r += w * ws.rad[n * nl + l];
                        radial_part += ws.drad[n * nl + l] * (w * ws.y[k]).re;
                    }
                    for a in 0..3 {
                        g[a] += (sum_r * ws.dy[k][a]).re;
                    }
                }
            }
        }
        for a in 0..3 {
            g[a] += radial_part * u[a];
        }
        forces.push((j, [-g[0], -g[1], -g[2]]));
        for a in 0..3 {
            centre[a] += g[a];
        }
        for (w, &(a, b)) in VOIGT.iter().enumerate() {
            virial[w] -= g[a] * v[b];
        }
    }
    forces.push((i, centre));
}
