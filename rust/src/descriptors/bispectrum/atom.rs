//! The stages for one central atom over its slice of the neighbor list, with the scratch
//! arrays one thread reuses from atom to atom.

use num_complex::Complex64 as C;

use super::contract::{half_dot, half_dot3};
use super::u::{compute_u, compute_u_du, mirror_levels, switching, CayleyKlein};
use super::{b, db, y, z, Bispectrum};
use crate::neighbors::NeighborList;

/// Pairs closer than this (squared, Angstrom^2) are skipped, as LAMMPS does: the map to the
/// 3-sphere is singular at r = 0.
const MIN_R2: f64 = 1e-20;

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

pub struct Workspace {
    pub neighbors: Vec<Neighbor>,
    u: Vec<C>,
    pub du: Vec<[C; 3]>,
    utot: Vec<C>,
    pub z: Vec<C>,
    y: Vec<C>,
}

impl Workspace {
    pub fn new(bs: &Bispectrum) -> Self {
        let (n, idx) = (bs.n_elements, &bs.indices);
        Workspace {
            neighbors: Vec::new(),
            u: vec![C::new(0.0, 0.0); idx.u_len],
            du: vec![[C::new(0.0, 0.0); 3]; idx.u_len],
            utot: vec![C::new(0.0, 0.0); n * idx.u_len],
            z: vec![C::new(0.0, 0.0); n * n * idx.z_len],
            y: vec![C::new(0.0, 0.0); n * idx.u_len],
        }
    }
}

/// What to compute for one atom after its descriptors.
pub enum Job<'a> {
    Descriptors,
    /// dB/dr per neighbor into the buffer.
    Gradients(&'a mut Vec<[f64; 3]>),
    /// dE/dr per neighbor for the given beta.
    Adjoint(&'a [f64], &'a mut Vec<[f64; 3]>),
}

impl Bispectrum {
    /// Runs one atom's stages compiled for AVX2 and FMA when the CPU has them (about 1.4x
    /// faster here), else for the baseline the wheel targets. The stages are
    /// `inline(always)` so that each entry point gets its own compilation of them. The
    /// choice depends only on the CPU, never on the thread count.
    pub(super) fn run_atom(
        &self,
        ws: &mut Workspace,
        list: &NeighborList,
        types: &[usize],
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function is compiled for
            return unsafe { self.run_atom_avx2_fma(ws, list, types, i, out_b, job) };
        }
        self.run_atom_inline(ws, list, types, i, out_b, job)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_atom_avx2_fma(
        &self,
        ws: &mut Workspace,
        list: &NeighborList,
        types: &[usize],
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        self.run_atom_inline(ws, list, types, i, out_b, job)
    }

    #[inline(always)]
    fn run_atom_inline(
        &self,
        ws: &mut Workspace,
        list: &NeighborList,
        types: &[usize],
        i: usize,
        out_b: &mut [f64],
        job: Job<'_>,
    ) {
        let all_z = !matches!(job, Job::Descriptors);
        self.atom_descriptors(ws, list, types, i, all_z, out_b);
        match job {
            Job::Descriptors => {}
            Job::Gradients(out) => {
                out.resize(ws.neighbors.len() * self.n_features, [0.0; 3]);
                self.atom_gradients(ws, out);
            }
            Job::Adjoint(beta, out) => self.atom_adjoint(ws, beta, out),
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
    /// With `all_z` every Z block is formed, as derivatives need; else only those of B.
    #[inline(always)]
    fn atom_descriptors(
        &self,
        ws: &mut Workspace,
        list: &NeighborList,
        types: &[usize],
        i: usize,
        all_z: bool,
        out_b: &mut [f64],
    ) {
        let p = &self.params;
        let idx = &self.indices;
        let n = self.n_elements;
        ws.neighbors.clear();
        for pair in list.pairs_of(i) {
            let r = list.distances[pair];
            if r * r < MIN_R2 {
                continue;
            }
            let tj = types[list.neighbors[pair]];
            ws.neighbors.push(Neighbor {
                pair,
                rij: list.vectors[pair],
                r,
                rcut: self.pair_cutoff(types[i], tj),
                wj: p.wj[tj],
                elem: self.channel(tj),
            });
        }

        // the self contribution: wself = 1 on the diagonal of every level, for the central
        // atom's own channel, or for all channels with wselfallflag
        let ielem = self.channel(types[i]);
        ws.utot.fill(C::new(0.0, 0.0));
        for e in 0..n {
            if e == ielem || p.wselfallflag {
                for j in 0..=idx.twojmax {
                    for m in 0..=j {
                        ws.utot[e * idx.u_len + idx.u_block[j] + m * (j + 1) + m] =
                            C::new(1.0, 0.0);
                    }
                }
            }
        }
        for nb in &ws.neighbors {
            let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
            compute_u(idx, &ck, &mut ws.u);
            let weight = switching(nb.r, nb.rcut, p.rmin0, p.switchflag).0 * nb.wj;
            let total = &mut ws.utot[nb.elem * idx.u_len..(nb.elem + 1) * idx.u_len];
            for j in 0..=idx.twojmax {
                let half = idx.u_block[j]..idx.u_block[j] + (j / 2 + 1) * (j + 1);
                for (t, u) in total[half.clone()].iter_mut().zip(&ws.u[half]) {
                    *t += u * weight;
                }
            }
        }
        for total in ws.utot.chunks_exact_mut(idx.u_len) {
            mirror_levels(idx, total);
        }
        let blocks = if all_z {
            &idx.z_blocks
        } else {
            &idx.z_blocks_for_b
        };
        z::compute_z(idx, &ws.utot, n, p.bnormflag, blocks, &mut ws.z);
        b::compute_b(idx, &ws.utot, &ws.z, n, out_b);
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

    /// Weighted dU/dr of neighbor `nb` into `ws.du`: d(f_c(r) w_j U)/dr_ij.
    #[inline(always)]
    fn neighbor_du(&self, ws: &mut Workspace, nb: &Neighbor) {
        let p = &self.params;
        let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
        compute_u_du(&self.indices, &ck, &mut ws.u, &mut ws.du);
        let (sfac, dsfac) = switching(nb.r, nb.rcut, p.rmin0, p.switchflag);
        let radial = nb.rij.map(|x| dsfac * nb.wj * x / nb.r);
        for j in 0..=self.indices.twojmax {
            let half = self.indices.u_block[j]..self.indices.u_block[j] + (j / 2 + 1) * (j + 1);
            for (g, u) in ws.du[half.clone()].iter_mut().zip(&ws.u[half]) {
                for k in 0..3 {
                    g[k] = g[k] * (sfac * nb.wj) + u * radial[k];
                }
            }
        }
    }

    /// After `atom_descriptors`: dB_i/dr_ij of every neighbor into `out` (one block of
    /// n_features rows of [x, y, z] per neighbor in `ws.neighbors`).
    #[inline(always)]
    fn atom_gradients(&self, ws: &mut Workspace, out: &mut [[f64; 3]]) {
        let nf = self.n_features;
        out.fill([0.0; 3]);
        for k in 0..ws.neighbors.len() {
            let nb = ws.neighbors[k];
            self.neighbor_du(ws, &nb);
            db::add_db(
                &self.indices,
                &ws.du,
                &ws.z,
                self.n_elements,
                nb.elem,
                self.params.bnormflag,
                &mut out[k * nf..(k + 1) * nf],
            );
        }
    }

    /// After `atom_descriptors`: dE_i/dr_ij of every neighbor for E_i = beta . B_i, through Y.
    /// d(f_c w U)/dr = w (f_c dU/dr + f_c' U r_ij/r), so each neighbor needs the contractions
    /// of dU and of U with Y, and never a weighted copy of dU.
    #[inline(always)]
    fn atom_adjoint(&self, ws: &mut Workspace, beta: &[f64], out: &mut Vec<[f64; 3]>) {
        let p = &self.params;
        let idx = &self.indices;
        y::compute_y(idx, &ws.z, beta, self.n_elements, p.bnormflag, &mut ws.y);
        out.clear();
        for nb in &ws.neighbors {
            let ck = CayleyKlein::new(nb.rij, nb.r, nb.rcut, p.rfac0, p.rmin0);
            compute_u_du(idx, &ck, &mut ws.u, &mut ws.du);
            let ye = &ws.y[nb.elem * idx.u_len..(nb.elem + 1) * idx.u_len];
            let (mut with_du, mut with_u) = ([0.0; 3], 0.0);
            for j in 0..=idx.twojmax {
                let s = idx.u_block[j];
                let v = half_dot3(j, &ws.du[s..], &ye[s..]);
                for c in 0..3 {
                    with_du[c] += v[c];
                }
                with_u += half_dot(j, &ws.u[s..], &ye[s..]);
            }
            let (sfac, dsfac) = switching(nb.r, nb.rcut, p.rmin0, p.switchflag);
            out.push(std::array::from_fn(|c| {
                nb.wj * (sfac * with_du[c] + dsfac * with_u * nb.rij[c] / nb.r)
            }));
        }
    }
}
