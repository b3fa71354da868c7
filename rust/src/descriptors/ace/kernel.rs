//! The per-atom work: the one-particle basis A of a neighbourhood, the functions B as sums
//! of products of its entries, their adjoints dB/dA, and the pass over the pairs that turns
//! those into derivatives with respect to the positions.
//!
//! A is stored for m >= 0 only (A_l,-m = (-1)^m conj(A_lm), the radial functions being
//! real); a function's product reads an entry as A, conj A or -conj A, and its adjoint is
//! folded onto the m >= 0 entries, so that dB = Re sum_e G_e dA_e over those entries.

use multiversion::multiversion;
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

/// The functions of one centre species, ready to evaluate: the rank-1 functions, and the
/// others in groups that share their neighbours' species, ns and ls (they differ in lint):
/// a group's products prod_t A over its m-combinations are formed once, and each member
/// weighs them with its own coupling coefficients (pacemaker's C-tilde merge).
#[derive(Debug, Clone, Default)]
pub struct Centre {
    /// (feature, A1 index, neighbour species, radial index).
    rank1: Vec<(usize, usize, usize, usize)>,
    groups: Vec<Group>,
    pub n_functions: usize,
}

#[derive(Debug, Clone)]
struct Group {
    rank: usize,
    /// Per combination, `rank` entries of A and how they are read.
    entries: Vec<u32>,
    reads: Vec<Read>,
    /// The distinct entries, sorted, and per combination slot its position among them.
    distinct: Vec<u32>,
    positions: Vec<u32>,
    /// The members' features and their coefficients, combination-major
    /// (coeffs[c * members.len() + j]), 0 where a member lacks the combination.
    members: Vec<usize>,
    coeffs: Vec<f64>,
}

impl Group {
    fn n_combinations(&self) -> usize {
        self.entries.len() / self.rank
    }
}

impl Centre {
    /// The functions of one centre, in feature order.
    pub fn new(functions: &[&BasisFunction], layout: &Layout) -> Result<Self, (usize, String)> {
        let mut centre = Centre {
            n_functions: functions.len(),
            ..Default::default()
        };
        // per group: its key, and per member its combinations
        let mut keys: Vec<(Vec<usize>, Vec<usize>, Vec<usize>)> = Vec::new();
        let mut members: Vec<Vec<(usize, Vec<i64>, Vec<f64>)>> = Vec::new();
        for (k, f) in functions.iter().enumerate() {
            let rank = f.ns.len();
            if rank == 1 {
                let (mu, n) = (f.mus[0], f.ns[0] - 1);
                centre.rank1.push((k, mu * layout.nradbase + n, mu, n));
                continue;
            }
            let (ms, coeffs) = coupling::half_combinations(&f.ls, &f.lint);
            if coeffs.is_empty() {
                return Err((k, format!(
                    "ls {:?} with intermediates {:?} couple to no invariant (check the triangle conditions of every node)",
                    f.ls, f.lint
                )));
            }
            let key = (f.mus.clone(), f.ns.clone(), f.ls.clone());
            let g = match keys.iter().position(|x| *x == key) {
                Some(g) => g,
                None => {
                    keys.push(key);
                    members.push(Vec::new());
                    keys.len() - 1
                }
            };
            members[g].push((k, ms, coeffs));
        }
        for ((mus, ns, ls), group) in keys.into_iter().zip(members) {
            let rank = ls.len();
            // the union of the members' combinations, in first-seen order
            let mut combinations: Vec<&[i64]> = Vec::new();
            for (_, ms, _) in &group {
                for m in ms.chunks(rank) {
                    if !combinations.contains(&m) {
                        combinations.push(m);
                    }
                }
            }
            let nm = group.len();
            let mut coeffs = vec![0.0; combinations.len() * nm];
            for (j, (_, ms, c)) in group.iter().enumerate() {
                for (m, &v) in ms.chunks(rank).zip(c) {
                    let at = combinations.iter().position(|x| *x == m).unwrap();
                    coeffs[at * nm + j] = v;
                }
            }
            let mut entries = Vec::with_capacity(combinations.len() * rank);
            let mut reads = Vec::with_capacity(combinations.len() * rank);
            for m in &combinations {
                for (t, &m) in m.iter().enumerate() {
                    entries.push(
                        layout.entry(mus[t], ns[t] - 1, ls[t], m.unsigned_abs() as usize) as u32,
                    );
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
            let members = group.iter().map(|(k, _, _)| *k).collect();
            centre.groups.push(Group {
                rank,
                entries,
                reads,
                distinct,
                positions,
                members,
                coeffs,
            });
        }
        Ok(centre)
    }

    /// Entries of the members' adjoints (per member, the group's distinct entries).
    pub fn n_adjoint(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.members.len() * g.distinct.len())
            .sum()
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
    /// Per group of the current centre, each member's adjoint over the group's distinct
    /// entries (flattened; `adjoint_at` offsets per group).
    adjoint: Vec<Complex64>,
    adjoint_at: Vec<usize>,
    /// One group's slope-weighted coefficient per combination.
    weights: Vec<f64>,
    /// One pair's dA/dr_ij over the entries of its species.
    da: Vec<[Complex64; 3]>,
    /// The backprop weights of A1 and A.
    w1: Vec<f64>,
    wa: Vec<Complex64>,
    slope: Vec<f64>,
}

impl Workspace {
    pub fn new(layout: &Layout, centres: &[Centre]) -> Self {
        let most_adjoint = centres.iter().map(Centre::n_adjoint).max().unwrap_or(0);
        let most_functions = centres.iter().map(|c| c.n_functions).max().unwrap_or(0);
        let most_combinations = centres
            .iter()
            .flat_map(|c| c.groups.iter().map(Group::n_combinations))
            .max()
            .unwrap_or(0);
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
            adjoint_at: vec![0; centres.iter().map(|c| c.groups.len()).max().unwrap_or(0) + 1],
            weights: vec![0.0; most_combinations],
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
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn write_values(centre: &Centre, ws: &Workspace, out: &mut [f64]) {
    out.fill(0.0);
    for &(k, a1, _, _) in &centre.rank1 {
        out[k] = ws.a1[a1];
    }
    for g in &centre.groups {
        let nm = g.members.len();
        for c in 0..g.n_combinations() {
            let mut p = Complex64::new(1.0, 0.0);
            for s in c * g.rank..(c + 1) * g.rank {
                p *= read(&ws.a, g.entries[s], g.reads[s]);
            }
            for (j, &k) in g.members.iter().enumerate() {
                out[k] += g.coeffs[c * nm + j] * p.re;
            }
        }
    }
}

/// Calls `each(c, slot, partial)` with w_c d prod_t A_t / d A_slot of every combination c
/// of group g with a weight w_c = weight(c) != 0, already turned into the adjoint of the
/// entry it reads (d Re(w v)/dA for v = A, conj A, -conj A). Ranks 2 to 4 are written out
/// (pairs of slots share their products); higher ranks use prefix and suffix products.
fn partials(g: &Group, a: &[Complex64], weight: impl Fn(usize) -> f64, mut each: impl FnMut(usize, usize, Complex64)) {
    let rank = g.rank;
    let mut v = [ZERO; super::MAX_RANK];
    let mut p = [ZERO; super::MAX_RANK];
    let mut after = [ZERO; super::MAX_RANK + 1];
    for c in 0..g.n_combinations() {
        let w = weight(c);
        if w == 0.0 {
            continue;
        }
        let base = c * rank;
        for t in 0..rank {
            v[t] = read(a, g.entries[base + t], g.reads[base + t]);
        }
        match rank {
            2 => {
                p[0] = v[1] * w;
                p[1] = v[0] * w;
            }
            3 => {
                let w0 = v[0] * w;
                p[0] = v[1] * v[2] * w;
                p[1] = w0 * v[2];
                p[2] = w0 * v[1];
            }
            4 => {
                let (w01, w23) = (v[0] * v[1] * w, v[2] * v[3] * w);
                p[0] = v[1] * w23;
                p[1] = v[0] * w23;
                p[2] = w01 * v[3];
                p[3] = w01 * v[2];
            }
            _ => {
                after[rank] = Complex64::new(w, 0.0);
                for t in (0..rank).rev() {
                    after[t] = after[t + 1] * v[t];
                }
                let mut before = Complex64::new(1.0, 0.0);
                for t in 0..rank {
                    p[t] = before * after[t + 1];
                    before *= v[t];
                }
            }
        }
        for t in 0..rank {
            let s = base + t;
            let adjoint = match g.reads[s] {
                Read::Plain => p[t],
                Read::Conj => p[t].conj(),
                Read::MinusConj => -p[t].conj(),
            };
            each(c, s, adjoint);
        }
    }
}

/// Each member's adjoint G over its group's distinct entries: dB = Re sum_e G_e dA_e.
fn adjoints(centre: &Centre, ws: &mut Workspace) {
    let mut at = 0;
    ws.adjoint_at[0] = 0;
    for (gi, g) in centre.groups.iter().enumerate() {
        let (nm, nd) = (g.members.len(), g.distinct.len());
        let out = &mut ws.adjoint[at..at + nm * nd];
        out.fill(ZERO);
        partials(
            g,
            &ws.a,
            |_| 1.0,
            |c, s, adjoint| {
                let e = g.positions[s] as usize;
                for j in 0..nm {
                    let w = g.coeffs[c * nm + j];
                    if w != 0.0 {
                        out[j * nd + e] += adjoint * w;
                    }
                }
            },
        );
        at += nm * nd;
        ws.adjoint_at[gi + 1] = at;
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
    let centre = &d.centres[c];
    let nf = d.n_features;
    density(d, env, i, ws);
    write_values(centre, ws, values);
    adjoints(centre, ws);
    let me = rows.binary_search(&i).expect("the centre is a row");
    let per_species = d.layout.per_species();
    let mut add = |k: usize, row: usize, grad: [f64; 3], v: [f64; 3]| {
        for a in 0..3 {
            gradients[(row * 3 + a) * nf + k] += grad[a];
            gradients[(me * 3 + a) * nf + k] -= grad[a];
        }
        for (w, &(a, b)) in VOIGT.iter().enumerate() {
            virial[w * nf + k] -= grad[a] * v[b];
        }
    };
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
        for &(k, _, species, n) in &centre.rank1 {
            if species == mu {
                add(k, row, std::array::from_fn(|a| ws.dg[n] * v[a] / r), v);
            }
        }
        let lo = (mu * per_species) as u32;
        let hi = lo + per_species as u32;
        for (gi, g) in centre.groups.iter().enumerate() {
            let first = g.distinct.partition_point(|&e| e < lo);
            let last = g.distinct.partition_point(|&e| e < hi);
            if first == last {
                continue;
            }
            let nd = g.distinct.len();
            let adjoint = &ws.adjoint[ws.adjoint_at[gi]..ws.adjoint_at[gi + 1]];
            for (jm, &k) in g.members.iter().enumerate() {
                let mut grad = [0.0; 3];
                for e in first..last {
                    let (gv, da) = (adjoint[jm * nd + e], &ws.da[(g.distinct[e] - lo) as usize]);
                    for a in 0..3 {
                        grad[a] += (gv * da[a]).re;
                    }
                }
                add(k, row, grad, v);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
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
    let centre = &d.centres[c];
    let layout = &d.layout;
    density(d, env, i, ws);
    write_values(centre, ws, values);
    let mut s = std::mem::take(&mut ws.slope);
    s.resize(d.n_features, 0.0);
    s.fill(0.0);
    slope(values, &mut s);
    // the weights of A1 and A: sum over functions of dE/dB dB/dA, one pass per group with
    // the members' coefficients weighted by their slopes
    ws.w1.fill(0.0);
    ws.wa.fill(ZERO);
    for &(k, a1, _, _) in &centre.rank1 {
        ws.w1[a1] += s[k];
    }
    for g in &centre.groups {
        let nm = g.members.len();
        let w = &mut ws.weights[..g.n_combinations()];
        for (c, w) in w.iter_mut().enumerate() {
            *w = g
                .members
                .iter()
                .enumerate()
                .map(|(j, &k)| s[k] * g.coeffs[c * nm + j])
                .sum();
        }
        let (wa, weights) = (&mut ws.wa, &ws.weights);
        partials(
            g,
            &ws.a,
            |c| weights[c],
            |_, slot, adjoint| {
                wa[g.entries[slot] as usize] += adjoint;
            },
        );
    }
    ws.slope = s;
    let mut me = [0.0; 3];
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
            me[a] += g[a];
        }
        for (w, &(a, b)) in VOIGT.iter().enumerate() {
            virial[w] -= g[a] * v[b];
        }
    }
    forces.push((i, me));
}
