//! The stages for one central atom over its slice of the neighbor list, with the scratch
//! arrays one thread reuses from atom to atom.

use super::contract::dot;
use super::simd::{Portable, Simd, LANES};
use super::u::{
    adjoint_u, compute_u_du, compute_u_into_total, mirror_total, switching, CayleyKlein,
};
use super::{b, db, y, z, Bispectrum};
use crate::descriptors::Env;

/// One neighbor as the stages see it.
#[derive(Debug, Clone, Copy)]
pub struct Neighbor {
    /// Index of the pair in the neighbor list.
    pub pair: usize,
    pub rij: [f64; 3],
    pub r: f64,
    pub rcut: f64,
    pub wj: f64,
    /// Density channel: the neighbor's element with chemflag, else 0.
    pub elem: usize,
}

/// Scratch arrays one thread reuses from atom to atom; complex arrays as real and imaginary
/// planes in the layouts of `indices`.
pub struct Workspace {
    pub neighbors: Vec<Neighbor>,
    /// One neighbor's U and dU/dr (six planes), half layout.
    ur: Vec<f64>,
    ui: Vec<f64>,
    du: Vec<f64>,
    /// Total U per element, full layout.
    tr: Vec<f64>,
    ti: Vec<f64>,
    /// Weighted Z per element pair.
    zr: Vec<f64>,
    zi: Vec<f64>,
    /// Y per element, half layout.
    yr: Vec<f64>,
    yi: Vec<f64>,
    /// The U of every neighbor of the atom (two half-layout planes each), for the adjoint.
    kept_u: Vec<f64>,
}

impl Workspace {
    /// Bytes of one workspace (`new`), without the per-neighbor buffers.
    pub fn bytes(bs: &Bispectrum) -> u128 {
        let (n, idx) = (bs.n_elements as u128, &bs.indices);
        let (half, full, z) = (
            idx.half_len as u128,
            idx.full_len as u128,
            idx.z_len as u128,
        );
        crate::descriptors::bytes_of::<f64>(8 * half + 2 * n * full + 2 * n * n * z + 2 * n * half)
    }

    pub fn new(bs: &Bispectrum) -> Self {
        let (n, idx) = (bs.n_elements, &bs.indices);
        Workspace {
            neighbors: Vec::new(),
            ur: vec![0.0; idx.half_len],
            ui: vec![0.0; idx.half_len],
            du: vec![0.0; 6 * idx.half_len],
            tr: vec![0.0; n * idx.full_len],
            ti: vec![0.0; n * idx.full_len],
            zr: vec![0.0; n * n * idx.z_len],
            zi: vec![0.0; n * n * idx.z_len],
            yr: vec![0.0; n * idx.half_len],
            yi: vec![0.0; n * idx.half_len],
            kept_u: Vec::new(),
        }
    }
}

/// What to compute for one atom after its descriptors.
pub enum Job<'a> {
    Descriptors,
    /// dB/dr per neighbor into the buffer.
    Gradients(&'a mut Vec<[f64; 3]>),
    /// beta = dE/dB from the slope (given B; into the buffer, zeroed first), then dE/dr
    /// per neighbor.
    Adjoint(
        &'a mut dyn FnMut(&[f64], &mut [f64]),
        &'a mut Vec<f64>,
        &'a mut Vec<[f64; 3]>,
    ),
}

impl Bispectrum {
    /// Runs one atom's stages with AVX2+FMA lanes when the CPU has them, else with portable
    /// lanes. The stages are `inline(always)` so that each entry point gets its own
    /// compilation of them. The choice depends only on the CPU, never on the thread count.
    pub(super) fn run_atom(
        &self,
        ws: &mut Workspace,
        env: &Env,
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if !self.portable_only
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function is compiled for
            return unsafe { self.run_atom_avx2_fma(ws, env, i, out_b, job) };
        }
        self.run_atom_with::<Portable>(ws, env, i, out_b, job)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_atom_avx2_fma(
        &self,
        ws: &mut Workspace,
        env: &Env,
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        self.run_atom_with::<super::simd::Avx2Fma>(ws, env, i, out_b, job)
    }

    #[inline(always)]
    fn run_atom_with<S: Simd>(
        &self,
        ws: &mut Workspace,
        env: &Env,
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        let all_z = !matches!(job, Job::Descriptors);
        let keep_u = matches!(job, Job::Adjoint(..));
        self.atom_descriptors::<S>(ws, env, i, all_z, keep_u, out_b);
        match job {
            Job::Descriptors => {}
            Job::Gradients(out) => {
                out.resize(ws.neighbors.len() * self.n_features, [0.0; 3]);
                self.atom_gradients::<S>(ws, out);
            }
            Job::Adjoint(slope, beta, out) => {
                beta.clear();
                beta.resize(self.n_features, 0.0);
                slope(out_b, beta);
                self.atom_adjoint::<S>(ws, beta, out)
            }
        }
    }

    #[inline(always)]
    fn channel(&self, element: usize) -> usize {
        if self.params.chemflag {
            element
        } else {
            0
        }
    }

    /// Collects atom i's neighbors, then U, Z and B (with the bzero shift) into `out_b`.
    /// With `all_z` every Z block is formed, as derivatives need; else only those of B. With
    /// `keep_u` each neighbor's U stays in `ws.kept_u` for the adjoint.
    #[inline(always)]
    fn atom_descriptors<S: Simd>(
        &self,
        ws: &mut Workspace,
        env: &Env,
        i: usize,
        all_z: bool,
        keep_u: bool,
        out_b: &mut [f64],
    ) {
        let p = &self.params;
        let idx = &self.indices;
        let (n, fl) = (self.n_elements, idx.full_len);
        ws.neighbors.clear();
        // no pair is closer than COINCIDENT_DISTANCE (the list refuses coincident atoms), so
        // none is skipped here: LAMMPS skips r < 1e-10, which hides an r = 0 dimer's
        // singularity. The list may reach beyond the pair cutoffs (shared with other terms).
        let (list, types) = (env.list, env.types);
        for pair in list.pairs_of(i) {
            let r = list.distances[pair];
            let tj = types[list.neighbors[pair]];
            let rcut = self.type_pair_cutoff(types[i], tj);
            if r >= rcut {
                continue;
            }
            ws.neighbors.push(Neighbor {
                pair,
                rij: list.vectors[pair],
                r,
                rcut,
                wj: p.wj[tj],
                elem: self.channel(tj),
            });
        }

        // the self contribution: wself = 1 on the diagonal of every level, for the central
        // atom's own channel, or for all channels with wselfallflag
        let ielem = self.channel(types[i]);
        ws.tr.fill(0.0);
        ws.ti.fill(0.0);
        for e in 0..n {
            if e == ielem || p.wselfallflag {
                for j in 0..=idx.twojmax {
                    for m in 0..=j / 2 {
                        ws.tr[e * fl + idx.full_start[j] + m * idx.stride[j] + m] = 1.0;
                    }
                }
            }
        }
        let hl = idx.half_len;
        if keep_u {
            ws.kept_u.resize(ws.neighbors.len() * 2 * hl, 0.0);
        }
        for (k, nb) in ws.neighbors.iter().enumerate() {
            let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
            let (ur, ui) = if keep_u {
                ws.kept_u[2 * k * hl..2 * (k + 1) * hl].split_at_mut(hl)
            } else {
                (&mut ws.ur[..], &mut ws.ui[..])
            };
            let weight = switching(nb.r, nb.rcut, p.rmin0, p.switchflag).0 * nb.wj;
            let e = nb.elem;
            let total = (
                &mut ws.tr[e * fl..(e + 1) * fl],
                &mut ws.ti[e * fl..(e + 1) * fl],
            );
            compute_u_into_total::<S>(idx, &ck, ur, ui, weight, total);
        }
        for (re, im) in ws.tr.chunks_exact_mut(fl).zip(ws.ti.chunks_exact_mut(fl)) {
            mirror_total(idx, re, im);
        }
        z::compute_z::<S>(
            idx,
            &ws.tr,
            &ws.ti,
            n,
            p.bnormflag,
            !all_z,
            &mut ws.zr,
            &mut ws.zi,
        );
        b::compute_b::<S>(idx, &ws.tr, &ws.ti, &ws.zr, &ws.zi, n, out_b);
        if p.bzeroflag {
            self.subtract_bzero(ielem, out_b);
        }
    }

    /// Subtracts the B of an isolated atom (U = identity): (j+1) per component, or 1 with
    /// bnormflag, from the central atom's own triple, or from all triples with wselfallflag.
    #[inline(always)]
    fn subtract_bzero(&self, ielem: usize, out_b: &mut [f64]) {
        let (n, n_b) = (self.n_elements, self.indices.n_b());
        let own = (ielem * n + ielem) * n + ielem;
        for (triple, row) in out_b.chunks_mut(n_b).enumerate() {
            if triple == own || self.params.wselfallflag {
                for (value, t) in row.iter_mut().zip(&self.indices.b_triples) {
                    *value -= if self.params.bnormflag {
                        1.0
                    } else {
                        (t.j + 1) as f64
                    };
                }
            }
        }
    }

    /// U and dU/dr of neighbor `nb` into `ws.ur`, `ws.ui`, `ws.du`; returns the switching
    /// function and its derivative.
    #[inline(always)]
    fn neighbor_u_du<S: Simd>(&self, ws: &mut Workspace, nb: &Neighbor) -> (f64, f64) {
        let p = &self.params;
        let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
        compute_u_du::<S>(&self.indices, &ck, &mut ws.ur, &mut ws.ui, &mut ws.du);
        switching(nb.r, nb.rcut, p.rmin0, p.switchflag)
    }

    /// After `atom_descriptors`: dB_i/dr_ij of every neighbor into `out` (one block of
    /// n_features rows of [x, y, z] per neighbor in `ws.neighbors`).
    #[inline(always)]
    fn atom_gradients<S: Simd>(&self, ws: &mut Workspace, out: &mut [[f64; 3]]) {
        let nf = self.n_features;
        let hl = self.indices.half_len;
        out.fill([0.0; 3]);
        for k in 0..ws.neighbors.len() {
            let nb = ws.neighbors[k];
            let (sfac, dsfac) = self.neighbor_u_du::<S>(ws, &nb);
            // d(f_c w U)/dr_ij = w (f_c dU/dr + f_c' U r_ij / r)
            let scale = S::splat(sfac * nb.wj);
            for (c, plane) in ws.du.chunks_exact_mut(hl).enumerate() {
                let u = if c % 2 == 0 { &ws.ur } else { &ws.ui };
                let radial = S::splat(dsfac * nb.wj * nb.rij[c / 2] / nb.r);
                for at in (0..hl).step_by(LANES) {
                    // SAFETY: at + 4 <= hl, a multiple of the lane width, for both planes
                    unsafe {
                        let g = plane.as_mut_ptr().add(at);
                        let v = S::mul_add(
                            radial,
                            S::load(u.as_ptr().add(at)),
                            S::mul(scale, S::load(g)),
                        );
                        S::store(g, v);
                    }
                }
            }
            db::add_db::<S>(
                &self.indices,
                &ws.du,
                &ws.zr,
                &ws.zi,
                self.n_elements,
                nb.elem,
                self.params.bnormflag,
                &mut out[k * nf..(k + 1) * nf],
            );
        }
    }

    /// After `atom_descriptors`: dE_i/dr_ij of every neighbor for E_i = beta . B_i, through Y.
    /// d(f_c w U)/dr = w (f_c dU/dr + f_c' U r_ij/r), so each neighbor needs the contractions
    /// of dU and of U with Y; the first comes from reverse mode through the U recursion
    /// (`u::adjoint_u`), so dU is never formed.
    #[inline(always)]
    fn atom_adjoint<S: Simd>(&self, ws: &mut Workspace, beta: &[f64], out: &mut Vec<[f64; 3]>) {
        let p = &self.params;
        let idx = &self.indices;
        let hl = idx.half_len;
        y::compute_y::<S>(
            idx,
            &ws.zr,
            &ws.zi,
            beta,
            self.n_elements,
            p.bnormflag,
            &mut ws.yr,
            &mut ws.yi,
        );
        out.clear();
        for (k, nb) in ws.neighbors.iter().enumerate() {
            let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
            let (ur, ui) = ws.kept_u[2 * k * hl..2 * (k + 1) * hl].split_at(hl);
            let (sfac, dsfac) = switching(nb.r, nb.rcut, p.rmin0, p.switchflag);
            let e = nb.elem;
            let y = (&ws.yr[e * hl..(e + 1) * hl], &ws.yi[e * hl..(e + 1) * hl]);
            let with_u = dot::<S>(y.0, y.1, ur, ui);
            let (gr, gi) = ws.du[..2 * hl].split_at_mut(hl);
            let with_du = adjoint_u::<S>(idx, &ck, (ur, ui), y, (gr, gi));
            out.push(std::array::from_fn(|c| {
                nb.wj * (sfac * with_du[c] + dsfac * with_u * nb.rij[c] / nb.r)
            }));
        }
    }
}
