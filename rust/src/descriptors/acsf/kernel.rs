//! One atom's symmetry functions: the functions of its element grouped for evaluation
//! (`Centre`), the per-thread scratch (`Workspace`) and the three per-atom calculations
//! (values, gradients, adjoint).
//!
//! Per atom, every neighbour entry within reach gets its distance, unit vector and, once
//! per distinct cutoff, f_c and df_c/dr; then, per radial group (eta, r_s, cutoff, type,
//! neighbour elements), E(r) = exp(-eta (r - r_s)^2) f_c(r) and dE/dr (for types 12 and 13
//! times Z_j, which makes the weight Z_j Z_k of a pair a product of the two). The pair loop
//! visits each unordered pair j < k once, computes cos theta, r_jk and the angular factors
//! A_t = (1 + lambda cos)^zeta of each distinct (lambda, zeta) once, and each group's
//! radial product R = E(r_ij) E(r_ik) [E(r_jk)] once; a function of the group adds
//! 2^(1-zeta) A_t R.
//!
//! Derivatives: with u = r_ij, v = r_ik, w = v - u = r_jk, the term T = c A(cos) R has
//! dT/du = c A' R dcos/du + c A (R_u u^ - R_w w^) and dT/dv = c A' R dcos/dv +
//! c A (R_v v^ + R_w w^), where R_u = dR/dr_ij and so on, dcos/du = (v^ - cos u^) / r_ij.
//! dT/du is the derivative by neighbour entry j's position; the centre's is minus the sum.

use std::ops::Range;

use super::cutoff::CutoffFunction;
use super::AcsfParams;
use crate::descriptors::{Env, VOIGT};

/// A radial function (type 2 or 12).
#[derive(Debug, Clone)]
struct Radial {
    feature: usize,
    /// Index into `Centre::cutoffs`.
    cut: usize,
    eta: f64,
    rs: f64,
    /// The neighbour species index (type 2), or None: every element, weighted by Z (12).
    element: Option<usize>,
}

/// Angular functions sharing their radial part.
#[derive(Debug, Clone)]
struct Group {
    /// Type 3 or 13 (with E(r_jk)) rather than 9.
    narrow: bool,
    /// The neighbour species pair (types 3 and 9, sorted), or None: every pair, weighted by
    /// Z_j Z_k (13).
    elements: Option<(usize, usize)>,
    eta: f64,
    rs: f64,
    cut: usize,
    members: Range<usize>,
}

/// An angular factor (1 + lambda cos)^zeta.
#[derive(Debug, Clone)]
struct Term {
    lambda: f64,
    zeta: f64,
    /// zeta - 1 when zeta is an integer (integer powers, as n2p2 uses there).
    power: Option<i32>,
}

/// A function of a group: feature, angular factor and its prefactor 2^(1-zeta).
#[derive(Debug, Clone)]
struct Member {
    term: usize,
    feature: usize,
    coef: f64,
}

/// The functions of one centre element.
#[derive(Debug, Clone)]
pub(super) struct Centre {
    pub n_functions: usize,
    /// Per neighbour species: the largest cutoff of a function that sees it (0: none).
    pub reach: Vec<f64>,
    pub cutoffs: Vec<CutoffFunction>,
    radial: Vec<Radial>,
    groups: Vec<Group>,
    terms: Vec<Term>,
    members: Vec<Member>,
    /// The integer-zeta terms by lambda, each chain in increasing zeta: a pair's powers
    /// (1 + lambda cos)^(zeta - 1) come from one another, a few multiplications each.
    chains: Vec<(f64, Vec<(usize, u32)>)>,
    /// Terms of non-integer zeta (powf).
    fractional: Vec<usize>,
    any_narrow: bool,
    /// Atomic number of each species index, the weights of types 12 and 13.
    z: Vec<f64>,
}

fn index_of(species: &[u32], z: u32) -> usize {
    species.iter().position(|&s| s == z).expect("validated")
}

impl Centre {
    /// The functions of centre species `c` of validated parameters.
    pub fn new(params: &AcsfParams, c: usize) -> Centre {
        let species = &params.species;
        let n_species = species.len();
        let mut centre = Centre {
            n_functions: 0,
            reach: vec![0.0; n_species],
            cutoffs: Vec::new(),
            radial: Vec::new(),
            groups: Vec::new(),
            terms: Vec::new(),
            members: Vec::new(),
            chains: Vec::new(),
            fractional: Vec::new(),
            any_narrow: false,
            z: species.iter().map(|&z| z as f64).collect(),
        };
        // members are collected per group, then laid out group after group
        let mut group_members: Vec<Vec<Member>> = Vec::new();
        let functions = params.functions.iter().filter(|f| f.center == species[c]);
        for (feature, f) in functions.enumerate() {
            centre.n_functions += 1;
            let cut = match centre.cutoffs.iter().position(|x| x.radius() == f.cutoff) {
                Some(k) => k,
                None => {
                    let fc =
                        CutoffFunction::new(params.cutoff_function, f.cutoff, params.cutoff_alpha);
                    centre.cutoffs.push(fc);
                    centre.cutoffs.len() - 1
                }
            };
            let elements: Option<Vec<usize>> = f
                .neighbors
                .as_ref()
                .map(|e| e.iter().map(|&z| index_of(species, z)).collect());
            match &elements {
                Some(e) => e
                    .iter()
                    .for_each(|&b| centre.reach[b] = centre.reach[b].max(f.cutoff)),
                None => centre.reach.iter_mut().for_each(|r| *r = r.max(f.cutoff)),
            }
            if f.kind == 2 || f.kind == 12 {
                centre.radial.push(Radial {
                    feature,
                    cut,
                    eta: f.eta,
                    rs: f.r_s,
                    element: elements.map(|e| e[0]),
                });
                continue;
            }
            let (lambda, zeta) = (f.lambda.unwrap(), f.zeta.unwrap());
            let narrow = f.kind != 9;
            let elements = elements.map(|e| (e[0].min(e[1]), e[0].max(e[1])));
            let g = match centre.groups.iter().position(|g| {
                g.narrow == narrow
                    && g.elements == elements
                    && g.eta == f.eta
                    && g.rs == f.r_s
                    && g.cut == cut
            }) {
                Some(g) => g,
                None => {
                    centre.groups.push(Group {
                        narrow,
                        elements,
                        eta: f.eta,
                        rs: f.r_s,
                        cut,
                        members: 0..0,
                    });
                    group_members.push(Vec::new());
                    centre.groups.len() - 1
                }
            };
            centre.any_narrow |= narrow;
            let term = match centre
                .terms
                .iter()
                .position(|t| t.lambda == lambda && t.zeta == zeta)
            {
                Some(t) => t,
                None => {
                    // integer zeta up to a bound where repeated squaring stays cheap
                    let power = (zeta.fract() == 0.0 && zeta <= 1024.0).then_some(zeta as i32 - 1);
                    centre.terms.push(Term {
                        lambda,
                        zeta,
                        power,
                    });
                    centre.terms.len() - 1
                }
            };
            group_members[g].push(Member {
                term,
                feature,
                coef: 2f64.powf(1.0 - zeta),
            });
        }
        for (t, term) in centre.terms.iter().enumerate() {
            match term.power {
                None => centre.fractional.push(t),
                Some(p) => match centre.chains.iter_mut().find(|c| c.0 == term.lambda) {
                    Some(chain) => chain.1.push((t, p as u32)),
                    None => centre.chains.push((term.lambda, vec![(t, p as u32)])),
                },
            }
        }
        for (_, chain) in &mut centre.chains {
            chain.sort_by_key(|&(_, p)| p);
            // steps: each power from the previous one
            let mut previous = 0;
            for step in chain.iter_mut() {
                let p = step.1;
                step.1 = p - previous;
                previous = p;
            }
        }
        for (g, members) in group_members.into_iter().enumerate() {
            let start = centre.members.len();
            centre.members.extend(members);
            centre.groups[g].members = start..centre.members.len();
        }
        centre
    }
}

impl Centre {
    /// Floats of one thread's scratch for atoms of this element with up to `nn`
    /// neighbours, `nf` features.
    pub fn scratch_floats(&self, nn: u128, nf: u128, need: crate::descriptors::Need) -> u128 {
        use crate::descriptors::Need;
        // neighbours (11 words each), f_c and df_c per cutoff, E and E' per group
        let per_neighbour = 11 + 2 * self.cutoffs.len() as u128 + 2 * self.groups.len() as u128;
        let nfc = self.n_functions as u128;
        let fixed = 3 * (self.cutoffs.len() + self.terms.len()) as u128
            + 2 * self.members.len() as u128
            + nfc
            + 2 * nf;
        let grad = match need {
            Need::Values => 0,
            Need::Gradients => nn * 3 * nfc,
            Need::Backprop => nn * 3,
        };
        nn * per_neighbour + fixed + grad
    }
}

/// One thread's scratch, reused from atom to atom (its vectors keep their capacity).
#[derive(Default)]
pub(super) struct Workspace {
    /// Per neighbour entry: atom index, species, distance, pair vector, unit vector.
    j: Vec<usize>,
    el: Vec<usize>,
    r: Vec<f64>,
    d: Vec<[f64; 3]>,
    u: Vec<[f64; 3]>,
    /// (cutoffs, neighbours): f_c and df_c/dr (0 beyond the cutoff).
    fc: Vec<f64>,
    dfc: Vec<f64>,
    /// (groups, neighbours): E(r) and dE/dr, weighted by Z for types 13.
    e: Vec<f64>,
    ed: Vec<f64>,
    /// f_c(r_jk), df_c(r_jk) per cutoff for the current pair, and the pair they belong to.
    fcw: Vec<(f64, f64)>,
    fcw_pair: Vec<usize>,
    /// A_t and dA_t/dcos of the current pair.
    a: Vec<f64>,
    da: Vec<f64>,
    /// The centre's functions in their internal order (radial functions, then the members
    /// group after group, so that a group's functions are contiguous): values (n_functions)
    /// and dX_f/dr_n, (neighbours, 3, n_functions).
    x: Vec<f64>,
    grad: Vec<f64>,
    /// A group's members' factors of dcos and of dR, for one pair.
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// dE/dX, in the external and the internal order (members times 2^(1-zeta)).
    de: Vec<f64>,
    de_int: Vec<f64>,
}

/// The radial product of one pair in one group, with its partial derivatives by r_ij, r_ik
/// and r_jk.
#[derive(Clone, Copy)]
struct Radials {
    r: f64,
    ru: f64,
    rv: f64,
    rw: f64,
}

/// One pair of neighbour entries j < k.
struct Pair {
    j: usize,
    k: usize,
    cos: f64,
    /// Unit vectors to j and k, their inverse distances, and the unit vector from j to k
    /// (zero when r_jk is not needed).
    uj: [f64; 3],
    uk: [f64; 3],
    ij: f64,
    ik: f64,
    w: [f64; 3],
}

impl Workspace {
    /// Neighbours of atom i within reach and their per-neighbour factors.
    fn gather(&mut self, c: &Centre, env: &Env, i: usize) {
        self.j.clear();
        self.el.clear();
        self.r.clear();
        self.d.clear();
        self.u.clear();
        for p in env.list.pairs_of(i) {
            let j = env.list.neighbors[p];
            let b = env.types[j];
            let r = env.list.distances[p];
            if r < c.reach[b] {
                let d = env.list.vectors[p];
                self.j.push(j);
                self.el.push(b);
                self.r.push(r);
                self.d.push(d);
                self.u.push(d.map(|x| x / r));
            }
        }
        let nn = self.j.len();
        self.fc.clear();
        self.dfc.clear();
        for cut in &c.cutoffs {
            let rc = cut.radius();
            for &r in &self.r {
                let (f, df) = if r < rc { cut.eval(r) } else { (0.0, 0.0) };
                self.fc.push(f);
                self.dfc.push(df);
            }
        }
        self.e.clear();
        self.ed.clear();
        for g in &c.groups {
            let rc = c.cutoffs[g.cut].radius();
            for n in 0..nn {
                let (r, b) = (self.r[n], self.el[n]);
                let sees = match g.elements {
                    Some((e1, e2)) => b == e1 || b == e2,
                    None => true,
                };
                let (mut e, mut ed) = (0.0, 0.0);
                if sees && r < rc {
                    let (f, df) = (self.fc[g.cut * nn + n], self.dfc[g.cut * nn + n]);
                    let x = r - g.rs;
                    let ex = (-g.eta * x * x).exp();
                    e = ex * f;
                    ed = ex * (df - 2.0 * g.eta * x * f);
                    if g.elements.is_none() {
                        e *= c.z[b];
                        ed *= c.z[b];
                    }
                }
                self.e.push(e);
                self.ed.push(ed);
            }
        }
        self.fcw.clear();
        self.fcw.resize(c.cutoffs.len(), (0.0, 0.0));
        self.fcw_pair.clear();
        self.fcw_pair.resize(c.cutoffs.len(), usize::MAX);
        self.a.resize(c.terms.len(), 0.0);
        self.da.resize(c.terms.len(), 0.0);
    }

    /// Runs `sink(pair, group index, group, radials, A, dA)` for every pair of neighbour entries j < k
    /// and every group that the pair contributes to.
    fn pairs(
        &mut self,
        c: &Centre,
        mut sink: impl FnMut(&Pair, usize, &Group, Radials, &[f64], &[f64]),
    ) {
        let nn = self.j.len();
        let mut stamp = 0usize;
        for j in 0..nn {
            let (rj, ej) = (self.r[j], self.el[j]);
            for k in j + 1..nn {
                let (rk, ek) = (self.r[k], self.el[k]);
                let (uj, uk) = (self.u[j], self.u[k]);
                let cos = uj[0] * uk[0] + uj[1] * uk[1] + uj[2] * uk[2];
                let (dj, dk) = (self.d[j], self.d[k]);
                let wv = [dk[0] - dj[0], dk[1] - dj[1], dk[2] - dj[2]];
                let rw2 = wv[0] * wv[0] + wv[1] * wv[1] + wv[2] * wv[2];
                let rw = if c.any_narrow { rw2.sqrt() } else { 0.0 };
                let mut pair = None;
                stamp += 1;
                for (gi, g) in c.groups.iter().enumerate() {
                    let cut = &c.cutoffs[g.cut];
                    let rc = cut.radius();
                    if !(rj < rc && rk < rc) {
                        continue;
                    }
                    if let Some((e1, e2)) = g.elements {
                        if !((ej == e1 && ek == e2) || (ej == e2 && ek == e1)) {
                            continue;
                        }
                    }
                    if g.narrow && rw2 >= rc * rc {
                        continue;
                    }
                    let pair = pair.get_or_insert_with(|| {
                        for (lambda, chain) in &c.chains {
                            let pl = 1.0 + lambda * cos;
                            let mut p = 1.0;
                            for &(t, step) in chain {
                                // a term counts 0 where 1 + lambda cos <= 0 (n2p2)
                                if pl <= 0.0 {
                                    (self.a[t], self.da[t]) = (0.0, 0.0);
                                    continue;
                                }
                                p *= pow_u(pl, step);
                                self.a[t] = p * pl;
                                self.da[t] = c.terms[t].zeta * lambda * p;
                            }
                        }
                        for &t in &c.fractional {
                            let term = &c.terms[t];
                            let pl = 1.0 + term.lambda * cos;
                            (self.a[t], self.da[t]) = if pl <= 0.0 {
                                (0.0, 0.0)
                            } else {
                                let p = pl.powf(term.zeta - 1.0);
                                (p * pl, term.zeta * term.lambda * p)
                            };
                        }
                        let w = if rw > 0.0 {
                            wv.map(|x| x / rw)
                        } else {
                            [0.0; 3]
                        };
                        Pair {
                            j,
                            k,
                            cos,
                            uj,
                            uk,
                            ij: 1.0 / rj,
                            ik: 1.0 / rk,
                            w,
                        }
                    });
                    let (ej_, ek_) = (self.e[gi * nn + j], self.e[gi * nn + k]);
                    let (edj, edk) = (self.ed[gi * nn + j], self.ed[gi * nn + k]);
                    let radials = if g.narrow {
                        if self.fcw_pair[g.cut] != stamp {
                            self.fcw[g.cut] = cut.eval(rw);
                            self.fcw_pair[g.cut] = stamp;
                        }
                        let (f, df) = self.fcw[g.cut];
                        let x = rw - g.rs;
                        let ex = (-g.eta * x * x).exp();
                        let (ew, edw) = (ex * f, ex * (df - 2.0 * g.eta * x * f));
                        let ejk = ej_ * ek_;
                        Radials {
                            r: ejk * ew,
                            ru: edj * ek_ * ew,
                            rv: ej_ * edk * ew,
                            rw: ejk * edw,
                        }
                    } else {
                        Radials {
                            r: ej_ * ek_,
                            ru: edj * ek_,
                            rv: ej_ * edk,
                            rw: 0.0,
                        }
                    };
                    sink(pair, gi, g, radials, &self.a, &self.da);
                }
            }
        }
    }
}

/// x^n by repeated squaring (n is small: a step between two zetas).
#[inline]
fn pow_u(mut x: f64, mut n: u32) -> f64 {
    let mut p = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            p *= x;
        }
        x *= x;
        n >>= 1;
    }
    p
}

impl Centre {
    /// The external feature of each internal function index.
    fn feature_of(&self, f: usize) -> usize {
        if f < self.radial.len() {
            self.radial[f].feature
        } else {
            self.members[f - self.radial.len()].feature
        }
    }
}

/// Runs `term(n, value, dvalue/dr)` for each neighbour entry n that radial function `rad`
/// sees (its element, within its cutoff); the value includes the weight Z_n of type 12.
#[inline]
fn radial_terms(c: &Centre, ws: &Workspace, rad: &Radial, mut term: impl FnMut(usize, f64, f64)) {
    let nn = ws.j.len();
    let rc = c.cutoffs[rad.cut].radius();
    for n in 0..nn {
        let (r, b) = (ws.r[n], ws.el[n]);
        let weight = match rad.element {
            Some(e) if e != b => continue,
            Some(_) => 1.0,
            None => c.z[b],
        };
        if r >= rc {
            continue;
        }
        let (fc, dfc) = (ws.fc[rad.cut * nn + n], ws.dfc[rad.cut * nn + n]);
        let dr = r - rad.rs;
        let ex = weight * (-rad.eta * dr * dr).exp();
        term(n, ex * fc, ex * (dfc - 2.0 * rad.eta * dr * fc));
    }
}

/// Component `ax` of dcos/du, dcos/dv, dR/du and dR/dv of a pair in a group (module doc).
#[inline]
fn axis_factors(p: &Pair, q: Radials, ax: usize) -> [f64; 4] {
    let (uj, uk) = (p.uj, p.uk);
    [
        (uk[ax] - p.cos * uj[ax]) * p.ij,
        (uj[ax] - p.cos * uk[ax]) * p.ik,
        q.ru * uj[ax] - q.rw * p.w[ax],
        q.rv * uk[ax] + q.rw * p.w[ax],
    ]
}

/// The centre's values into `ws.x` (internal order) and, with `with_grad`, dX_f/dr_n into
/// `ws.grad`.
fn evaluate(c: &Centre, ws: &mut Workspace, with_grad: bool) {
    let nn = ws.j.len();
    let nfc = c.n_functions;
    let mut x = std::mem::take(&mut ws.x);
    x.clear();
    x.resize(nfc, 0.0);
    let mut grad = std::mem::take(&mut ws.grad);
    grad.clear();
    if with_grad {
        grad.resize(nn * 3 * nfc, 0.0);
    }
    for (f, rad) in c.radial.iter().enumerate() {
        let mut g = 0.0;
        radial_terms(c, ws, rad, |n, e, de| {
            g += e;
            if with_grad {
                for a in 0..3 {
                    grad[(n * 3 + a) * nfc + f] += de * ws.u[n][a];
                }
            }
        });
        x[f] = g;
    }
    let n_radial = c.radial.len();
    let mut xs = std::mem::take(&mut ws.xs);
    let mut ys = std::mem::take(&mut ws.ys);
    ws.pairs(c, |p, _, g, q, a, da| {
        let members = &c.members[g.members.clone()];
        let off = n_radial + g.members.start;
        let xg = &mut x[off..off + members.len()];
        if !with_grad {
            for (m, xf) in members.iter().zip(xg) {
                *xf += m.coef * a[m.term] * q.r;
            }
            return;
        }
        xs.clear();
        ys.clear();
        for (m, xf) in members.iter().zip(xg) {
            let y = m.coef * a[m.term];
            *xf += y * q.r;
            xs.push(m.coef * da[m.term] * q.r);
            ys.push(y);
        }
        // dT/du = x dcos/du + y dR/du, dT/dv = x dcos/dv + y dR/dv (module doc)
        for ax in 0..3 {
            let [cu, cv, ru, rv] = axis_factors(p, q, ax);
            let gj = &mut grad[(p.j * 3 + ax) * nfc + off..][..members.len()];
            for ((g, x), y) in gj.iter_mut().zip(&xs).zip(&ys) {
                *g += x * cu + y * ru;
            }
            let gk = &mut grad[(p.k * 3 + ax) * nfc + off..][..members.len()];
            for ((g, x), y) in gk.iter_mut().zip(&xs).zip(&ys) {
                *g += x * cv + y * rv;
            }
        }
    });
    ws.x = x;
    ws.grad = grad;
    ws.xs = xs;
    ws.ys = ys;
}

/// Prepares atom i: its centre's tables, neighbours and values (zeros beyond them in `out`).
fn start<'a>(
    d: &'a super::Acsf,
    env: &Env,
    i: usize,
    ws: &mut Workspace,
    with_grad: bool,
) -> &'a Centre {
    let c = &d.centres[env.types[i]];
    ws.gather(c, env, i);
    evaluate(c, ws, with_grad);
    c
}

fn write_values(c: &Centre, ws: &Workspace, out: &mut [f64]) {
    out.fill(0.0);
    for (f, x) in ws.x.iter().enumerate() {
        out[c.feature_of(f)] = *x;
    }
}

/// X_i into `out`.
pub(super) fn values(d: &super::Acsf, env: &Env, i: usize, ws: &mut Workspace, out: &mut [f64]) {
    let c = start(d, env, i, ws, false);
    write_values(c, ws, out);
}

/// X_i, dX_i/dr_j of the rows and the per-atom virial.
#[allow(clippy::too_many_arguments)]
pub(super) fn gradients(
    d: &super::Acsf,
    env: &Env,
    i: usize,
    ws: &mut Workspace,
    rows: &[usize],
    values: &mut [f64],
    gradients: &mut [f64],
    virial: &mut [f64],
) {
    let nf = d.n_features;
    let c = start(d, env, i, ws, true);
    write_values(c, ws, values);
    let nfc = c.n_functions;
    // each entry's derivative into its atom's row, minus all of them into the centre's
    let centre = rows.binary_search(&i).expect("the centre is a row");
    for n in 0..ws.j.len() {
        let row = rows
            .binary_search(&ws.j[n])
            .expect("every neighbour within reach is a row");
        for a in 0..3 {
            let gn = &ws.grad[(n * 3 + a) * nfc..(n * 3 + a + 1) * nfc];
            for (f, &g) in gn.iter().enumerate() {
                let e = c.feature_of(f);
                gradients[(row * 3 + a) * nf + e] += g;
                gradients[(centre * 3 + a) * nf + e] -= g;
            }
        }
        for (v, &(a, b)) in VOIGT.iter().enumerate() {
            let rb = ws.d[n][b];
            let gn = &ws.grad[(n * 3 + a) * nfc..(n * 3 + a + 1) * nfc];
            for (f, &g) in gn.iter().enumerate() {
                virial[v * nf + c.feature_of(f)] -= g * rb;
            }
        }
    }
}

/// The adjoint: the values (the pair pass without derivatives), `slope`, then one more
/// pair pass that contracts dE/dX_f with each group's functions into two scalars, of dcos
/// and of dR, before any vector work. That second pass recomputes the pair factors (a few
/// exps per pair) instead of storing them: dX/dr per function is never formed, and the
/// scratch stays O(neighbours), whatever the number of pairs.
#[allow(clippy::too_many_arguments)]
pub(super) fn backprop(
    d: &super::Acsf,
    env: &Env,
    i: usize,
    ws: &mut Workspace,
    values: &mut [f64],
    slope: &mut dyn FnMut(&[f64], &mut [f64]),
    forces: &mut Vec<(usize, [f64; 3])>,
    virial: &mut [f64; 6],
) {
    let c = start(d, env, i, ws, false);
    write_values(c, ws, values);
    let nfc = c.n_functions;
    let nn = ws.j.len();
    let mut de = std::mem::take(&mut ws.de);
    de.clear();
    de.resize(d.n_features, 0.0);
    slope(values, &mut de);
    // dE/dX_f times 2^(1-zeta) per member (the internal order past the radial functions)
    let mut w = std::mem::take(&mut ws.de_int);
    w.clear();
    w.extend((0..nfc).map(|f| de[c.feature_of(f)]));
    for (wm, m) in w[c.radial.len()..].iter_mut().zip(&c.members) {
        *wm *= m.coef;
    }
    // dE/dr_n per neighbour entry, kept in the gradient buffer's first 3 nn floats
    let mut gde = std::mem::take(&mut ws.grad);
    gde.clear();
    gde.resize(3 * nn, 0.0);
    for (f, rad) in c.radial.iter().enumerate() {
        if w[f] == 0.0 {
            continue;
        }
        radial_terms(c, ws, rad, |n, _, de| {
            for a in 0..3 {
                gde[3 * n + a] += w[f] * de * ws.u[n][a];
            }
        });
    }
    let n_radial = c.radial.len();
    if w[n_radial..].iter().any(|&x| x != 0.0) {
        ws.pairs(c, |p, _, g, q, a, da| {
            let members = &c.members[g.members.clone()];
            let wg = &w[n_radial + g.members.start..n_radial + g.members.end];
            let (mut y, mut x) = (0.0, 0.0);
            for (m, wm) in members.iter().zip(wg) {
                y += wm * a[m.term];
                x += wm * da[m.term];
            }
            let x = x * q.r;
            for ax in 0..3 {
                let [cu, cv, ru, rv] = axis_factors(p, q, ax);
                gde[3 * p.j + ax] += x * cu + y * ru;
                gde[3 * p.k + ax] += x * cv + y * rv;
            }
        });
    }
    let mut centre = [0.0; 3];
    for n in 0..nn {
        let g = [gde[3 * n], gde[3 * n + 1], gde[3 * n + 2]];
        forces.push((ws.j[n], [-g[0], -g[1], -g[2]]));
        for a in 0..3 {
            centre[a] += g[a];
        }
        for (v, &(a, b)) in VOIGT.iter().enumerate() {
            virial[v] -= g[a] * ws.d[n][b];
        }
    }
    forces.push((i, centre));
    ws.de = de;
    ws.de_int = w;
    ws.grad = gde;
}
