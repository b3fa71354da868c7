//! Training atomic neural networks: predictions and exact loss gradients with respect to the
//! weights over a cached training set.
//!
//! A frame's energy is E = sum_i E_i(X_i), its forces F_k = -sum_i (dX_i/dr_k)^T g_i and its
//! virial W = sum_i W_i g_i, with g_i = dE_i/dX_i (the network's input gradient) and W_i the
//! per-atom virial of the descriptor. Every quantity a loss or a Kalman filter observes is a
//! linear functional of these,
//!
//!   h = alpha E + sum_k d_k . dE/dr_k + c . W = sum_i [alpha E_i + u_i . g_i],
//!   u_i = sum_k (dX_i/dr_k) d_k + W_i^T c,
//!
//! for a frame's coefficient alpha, displacement field d (n_atoms, 3) and virial direction c
//! (6): u_i is the descriptor's forward-mode product, and d h / d theta is, atom by atom, the
//! gradient of alpha E_i + u_i . g_i with respect to the network's weights, one
//! forward-over-reverse pass (`Network::directional_gradient`). The loss gradient of
//! energies, forces and stresses is such an h with alpha, d and c from the residuals: the
//! force residual pulled back to feature space. So is each observation of the Kalman filter
//! (`kalman`).
//!
//! The descriptors and their gradients are computed once (`TrainingSet::new`) and kept
//! trimmed to each network's inputs, sparse in neighbors, as n2p2 keeps its symmetry-function
//! derivatives: an epoch then costs only network passes.

pub mod kalman;

use std::sync::Arc;

use rayon::prelude::*;

use super::Network;
use crate::descriptors::driver::{for_each_atom_gradients, own_list, types};
use crate::descriptors::Descriptor;
use crate::error::{Error, Result};
use crate::structure::Structure;

/// Frames whose gradients one task sums, in order: the batch sum is a fixed tree over these
/// groups, the same for every thread count.
const FRAMES_PER_TASK: usize = 4;

/// Atoms whose gradients are alive at once while a frame is cached.
const CHUNK: usize = 1024;

// ------------------------------------------------------------------ one network's gradient

/// Scratch of `Network::directional_gradient`, reused from atom to atom.
#[derive(Debug, Clone, Default)]
pub struct DualWorkspace {
    /// Per neuron, the input layer first: a = f(z), f'(z), f''(z), the tangent dz of z and
    /// v = f'(z) dz of a along the input direction.
    a: Vec<f64>,
    d1: Vec<f64>,
    d2: Vec<f64>,
    dz: Vec<f64>,
    v: Vec<f64>,
    /// Adjoints of a and v of one layer and the layer before.
    abar: Vec<f64>,
    vbar: Vec<f64>,
    abar_next: Vec<f64>,
    vbar_next: Vec<f64>,
    zbar: Vec<f64>,
    dzbar: Vec<f64>,
}

fn grow(v: &mut Vec<f64>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

impl Network {
    /// Adds to `gradient` (n_parameters, in the order of `parameters`) the gradient with
    /// respect to the weights of alpha E(x) + u . dE/dx (u: a direction in the raw inputs,
    /// n_in), and returns (E, u . dE/dx). The input term's gradient goes through the
    /// network's tangent along u (forward mode) and then back through both (reverse mode),
    /// with the activations' curvature.
    pub fn directional_gradient(
        &self,
        x: &[f64],
        u: &[f64],
        alpha: f64,
        ws: &mut DualWorkspace,
        gradient: &mut [f64],
    ) -> (f64, f64) {
        let n_in = self.n_in();
        assert_eq!(x.len(), n_in);
        assert_eq!(u.len(), n_in);
        assert_eq!(gradient.len(), self.n_parameters());
        let total = n_in + self.n_neurons();
        let widest = self.widest();
        for v in [&mut ws.a, &mut ws.d1, &mut ws.d2, &mut ws.dz, &mut ws.v] {
            grow(v, total);
        }
        for v in [
            &mut ws.abar,
            &mut ws.vbar,
            &mut ws.abar_next,
            &mut ws.vbar_next,
            &mut ws.zbar,
            &mut ws.dzbar,
        ] {
            grow(v, widest);
        }
        let s = &self.scaling;
        for k in 0..n_in {
            ws.a[k] = s.offset[k] + s.factor[k] * (x[k] - s.shift[k]);
            ws.v[k] = s.factor[k] * u[k];
        }
        // forward: the values and their tangents
        let mut start = 0; // first neuron of the layer's inputs
        for layer in &self.layers {
            let c = if self.normalize_nodes {
                1.0 / layer.n_in as f64
            } else {
                1.0
            };
            let out = start + layer.n_in;
            for o in 0..layer.n_out {
                let w = &layer.weights[o * layer.n_in..(o + 1) * layer.n_in];
                let (mut z, mut dz) = (layer.biases[o], 0.0);
                for (k, w) in w.iter().enumerate() {
                    z += w * ws.a[start + k];
                    dz += w * ws.v[start + k];
                }
                let (z, dz) = (c * z, c * dz);
                let (f, d1, d2) = layer.activation.eval2(z);
                ws.a[out + o] = f;
                ws.d1[out + o] = d1;
                ws.d2[out + o] = d2;
                ws.dz[out + o] = dz;
                ws.v[out + o] = d1 * dz;
            }
            start = out;
        }
        let sigma = self.energy_scale;
        let energy = sigma * ws.a[start] + self.energy_offset;
        let directional = sigma * ws.v[start];
        // backward through values and tangents: the adjoints of a_L and v_L are
        // alpha sigma and sigma
        ws.abar[0] = alpha * sigma;
        ws.vbar[0] = sigma;
        let mut end = gradient.len();
        let mut out = start; // first neuron of the layer
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let c = if self.normalize_nodes {
                1.0 / layer.n_in as f64
            } else {
                1.0
            };
            let input = out - layer.n_in;
            for o in 0..layer.n_out {
                let n = out + o;
                ws.zbar[o] = ws.abar[o] * ws.d1[n] + ws.vbar[o] * ws.d2[n] * ws.dz[n];
                ws.dzbar[o] = ws.vbar[o] * ws.d1[n];
            }
            let nb = layer.n_out;
            let nw = layer.n_out * layer.n_in;
            let (gw, gb) = gradient[end - nb - nw..end].split_at_mut(nw);
            for o in 0..layer.n_out {
                let (zb, dzb) = (c * ws.zbar[o], c * ws.dzbar[o]);
                gb[o] += zb;
                let row = &mut gw[o * layer.n_in..(o + 1) * layer.n_in];
                for (k, g) in row.iter_mut().enumerate() {
                    *g += zb * ws.a[input + k] + dzb * ws.v[input + k];
                }
            }
            if l > 0 {
                ws.abar_next[..layer.n_in].fill(0.0);
                ws.vbar_next[..layer.n_in].fill(0.0);
                for o in 0..layer.n_out {
                    let (zb, dzb) = (c * ws.zbar[o], c * ws.dzbar[o]);
                    let w = &layer.weights[o * layer.n_in..(o + 1) * layer.n_in];
                    for (k, w) in w.iter().enumerate() {
                        ws.abar_next[k] += w * zb;
                        ws.vbar_next[k] += w * dzb;
                    }
                }
                std::mem::swap(&mut ws.abar, &mut ws.abar_next);
                std::mem::swap(&mut ws.vbar, &mut ws.vbar_next);
            }
            end -= nb + nw;
            out = input;
        }
        (energy, directional)
    }
}

// ------------------------------------------------------------------ the cached set

/// One frame's cached descriptor: per atom X_i and the rows dX_i/dr_j (3 x n_in each),
/// trimmed to the inputs of the atom's network, and W_i when the frame has a stress.
#[derive(Debug, Clone)]
struct Frame {
    types: Vec<usize>,
    /// Atom i's X_i is x[x_at[i]..x_at[i + 1]] (n_in of its species), its W_i is
    /// virial[6 x_at[i]..6 x_at[i + 1]] (6 rows of n_in).
    x_at: Vec<usize>,
    x: Vec<f64>,
    virial: Vec<f64>,
    /// Atom i's gradient rows are rows[row_at[i]..row_at[i + 1]] (the atoms j), their values
    /// dx[3 x_at-weighted offsets]: row r of atom i starts at dx_at[i] + 3 n_in r.
    row_at: Vec<usize>,
    rows: Vec<usize>,
    dx_at: Vec<usize>,
    dx: Vec<f64>,
}

impl Frame {
    fn n_atoms(&self) -> usize {
        self.types.len()
    }
}

/// A frame's prediction: total energy (eV), forces (eV/Angstrom), virial (eV, Voigt order,
/// stress = -virial / volume).
#[derive(Debug, Clone, PartialEq)]
pub struct FramePrediction {
    pub energy: f64,
    pub forces: Vec<[f64; 3]>,
    pub virial: [f64; 6],
}

/// The linear functional of one frame that an observation or a loss term reads: alpha,
/// the displacement field d (n_atoms) and the virial direction c (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Functional<'a> {
    pub alpha: f64,
    pub displacement: &'a [[f64; 3]],
    pub virial: [f64; 6],
}

/// The descriptors of a set of frames with their gradients, cached for training networks on
/// them; immutable once built, shared by every member of a committee.
pub struct TrainingSet {
    descriptor: Arc<dyn Descriptor>,
    n_inputs: Vec<usize>,
    frames: Vec<Frame>,
}

/// Scratch of one thread.
#[derive(Default)]
struct Workspace {
    network: super::NetworkWorkspace,
    dual: DualWorkspace,
    g: Vec<f64>,
    u: Vec<f64>,
}

impl TrainingSet {
    /// Computes and caches the descriptors of `structures` with their gradients, trimmed to
    /// the first `n_inputs[s]` features for species index s (a network's inputs), with the
    /// per-atom virials of the frames where `stress[f]` is set.
    pub fn new(
        descriptor: Arc<dyn Descriptor>,
        n_inputs: Vec<usize>,
        structures: &[Structure],
        stress: &[bool],
    ) -> Result<Self> {
        let d = descriptor.as_ref();
        let (ns, nf) = (d.species().len(), d.n_features());
        if n_inputs.len() != ns {
            return Err(Error::invalid(format!(
                "n_inputs needs one count per species of the descriptor ({ns}), got {}",
                n_inputs.len()
            )));
        }
        if let Some(s) = n_inputs.iter().position(|&n| n == 0 || n > nf) {
            return Err(Error::invalid(format!(
                "n_inputs[{s}] = {} must be between 1 and the {nf} features of the descriptor",
                n_inputs[s]
            )));
        }
        if stress.len() != structures.len() {
            return Err(Error::invalid(format!(
                "stress needs one flag per structure ({}), got {}",
                structures.len(),
                stress.len()
            )));
        }
        let mut frames = Vec::with_capacity(structures.len());
        for (f, (structure, &with_virial)) in structures.iter().zip(stress).enumerate() {
            let frame = Self::cache(d, &n_inputs, structure, with_virial)
                .map_err(|e| e.context(&format!("training frame {f}")))?;
            frames.push(frame);
        }
        Ok(TrainingSet {
            descriptor,
            n_inputs,
            frames,
        })
    }

    fn cache(
        d: &dyn Descriptor,
        n_inputs: &[usize],
        structure: &Structure,
        with_virial: bool,
    ) -> Result<Frame> {
        let list = own_list(d, structure)?;
        let types = types(d, structure)?;
        let n = structure.len();
        let widest = types.iter().map(|&t| n_inputs[t]).max().unwrap_or(0) as u128;
        let bytes = ((list.n_pairs() + n) as u128 * 3 + 7 * n as u128) * widest * 8;
        crate::memory::ensure_fits(
            bytes,
            &format!("the cached descriptor gradients of {n} atoms"),
        )?;
        let mut frame = Frame {
            types: types.clone(),
            x_at: vec![0],
            x: Vec::new(),
            virial: Vec::new(),
            row_at: vec![0],
            rows: Vec::new(),
            dx_at: vec![0],
            dx: Vec::new(),
        };
        let nf = d.n_features();
        for_each_atom_gradients(
            d,
            structure,
            &list,
            CHUNK,
            |atom| {
                let m = n_inputs[types[atom.center]];
                let mut dx = Vec::with_capacity(atom.rows.len() * 3 * m);
                for r in 0..atom.rows.len() {
                    for a in 0..3 {
                        let at = (3 * r + a) * nf;
                        dx.extend_from_slice(&atom.gradients[at..at + m]);
                    }
                }
                let mut w = Vec::new();
                if with_virial {
                    for v in 0..6 {
                        w.extend_from_slice(&atom.virial[v * nf..v * nf + m]);
                    }
                }
                (atom.values[..m].to_vec(), atom.rows.to_vec(), dx, w)
            },
            |_, (x, rows, dx, w)| {
                frame.x.extend_from_slice(&x);
                frame.x_at.push(frame.x.len());
                frame.virial.extend_from_slice(&w);
                frame.rows.extend_from_slice(&rows);
                frame.row_at.push(frame.rows.len());
                frame.dx.extend_from_slice(&dx);
                frame.dx_at.push(frame.dx.len());
            },
        )?;
        if let Some(k) = frame.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "the descriptor of the frame is not finite (value {k})"
            )));
        }
        Ok(frame)
    }

    pub fn descriptor(&self) -> &dyn Descriptor {
        self.descriptor.as_ref()
    }

    pub fn n_inputs(&self) -> &[usize] {
        &self.n_inputs
    }

    pub fn n_frames(&self) -> usize {
        self.frames.len()
    }

    /// Atoms of frame f.
    pub fn n_atoms(&self, f: usize) -> usize {
        self.frames[f].n_atoms()
    }

    /// The species indices of frame f's atoms.
    pub fn types(&self, f: usize) -> &[usize] {
        &self.frames[f].types
    }

    /// Atoms of species index s in `frames`, and their raw features (n, n_inputs[s]),
    /// row-major: for the input scaling.
    pub fn features(&self, s: usize, frames: &[usize]) -> Result<Vec<f64>> {
        self.check_frames(frames)?;
        let mut out = Vec::new();
        for &f in frames {
            let frame = &self.frames[f];
            for (i, &t) in frame.types.iter().enumerate() {
                if t == s {
                    out.extend_from_slice(&frame.x[frame.x_at[i]..frame.x_at[i + 1]]);
                }
            }
        }
        Ok(out)
    }

    /// Checks frame indices.
    pub fn check_frames(&self, frames: &[usize]) -> Result<()> {
        match frames.iter().find(|&&f| f >= self.frames.len()) {
            Some(f) => Err(Error::invalid(format!(
                "frame {f} is out of range (the set has {} frames)",
                self.frames.len()
            ))),
            None => Ok(()),
        }
    }

    /// Checks that `networks` (one per species index) fit the cached inputs.
    pub fn check_networks(&self, networks: &[Network]) -> Result<()> {
        if networks.len() != self.n_inputs.len() {
            return Err(Error::invalid(format!(
                "training needs one network per species ({}), got {}",
                self.n_inputs.len(),
                networks.len()
            )));
        }
        for (s, (net, &m)) in networks.iter().zip(&self.n_inputs).enumerate() {
            if net.n_in() != m {
                return Err(Error::invalid(format!(
                    "the network of species index {s} has {} inputs, the training set caches {m}",
                    net.n_in()
                )));
            }
        }
        Ok(())
    }

    /// Where each species' parameters start in the concatenated parameter vector, and
    /// the total.
    pub fn parameter_offsets(networks: &[Network]) -> (Vec<usize>, usize) {
        let mut offsets = Vec::with_capacity(networks.len());
        let mut total = 0;
        for n in networks {
            offsets.push(total);
            total += n.n_parameters();
        }
        (offsets, total)
    }

    fn predict_frame(&self, networks: &[Network], f: usize, ws: &mut Workspace) -> FramePrediction {
        let frame = &self.frames[f];
        let n = frame.n_atoms();
        let mut p = FramePrediction {
            energy: 0.0,
            forces: vec![[0.0; 3]; n],
            virial: [0.0; 6],
        };
        for i in 0..n {
            let net = &networks[frame.types[i]];
            let m = net.n_in();
            grow(&mut ws.g, m);
            let g = &mut ws.g[..m];
            let x = &frame.x[frame.x_at[i]..frame.x_at[i + 1]];
            p.energy += net.evaluate(x, &mut ws.network, Some(g));
            let rows = &frame.rows[frame.row_at[i]..frame.row_at[i + 1]];
            let dx = &frame.dx[frame.dx_at[i]..frame.dx_at[i + 1]];
            for (r, &j) in rows.iter().enumerate() {
                for a in 0..3 {
                    let row = &dx[(3 * r + a) * m..(3 * r + a + 1) * m];
                    p.forces[j][a] -= crate::linalg::dot(row, g);
                }
            }
            if !frame.virial.is_empty() {
                let w = &frame.virial[6 * frame.x_at[i]..6 * frame.x_at[i + 1]];
                for v in 0..6 {
                    p.virial[v] += crate::linalg::dot(&w[v * m..(v + 1) * m], g);
                }
            }
        }
        p
    }

    /// Energies, forces and virials of `frames` with `networks` (one per species index),
    /// parallel over frames.
    pub fn predict(&self, networks: &[Network], frames: &[usize]) -> Result<Vec<FramePrediction>> {
        self.check_networks(networks)?;
        self.check_frames(frames)?;
        Ok(frames
            .par_iter()
            .map_init(Workspace::default, |ws, &f| {
                self.predict_frame(networks, f, ws)
            })
            .collect())
    }

    /// Checks a functional against frame f.
    fn check_functional(&self, f: usize, h: &Functional) -> Result<()> {
        let frame = &self.frames[f];
        if h.displacement.len() != frame.n_atoms() && !h.displacement.is_empty() {
            return Err(Error::invalid(format!(
                "the displacement of frame {f} needs {} atoms, got {}",
                frame.n_atoms(),
                h.displacement.len()
            )));
        }
        if h.virial.iter().any(|&c| c != 0.0) && frame.virial.is_empty() {
            return Err(Error::invalid(format!(
                "frame {f} has no cached virial (it was cached without a stress)"
            )));
        }
        let finite = h.alpha.is_finite()
            && h.virial.iter().all(|c| c.is_finite())
            && h.displacement.iter().flatten().all(|c| c.is_finite());
        if !finite {
            return Err(Error::invalid(format!(
                "the loss coefficients of frame {f} are not finite"
            )));
        }
        Ok(())
    }

    /// Adds d h / d theta of frame f to `gradient` (concatenated per species at `offsets`)
    /// and returns h (see the module docs). Atoms that the functional does not see (alpha 0
    /// and u_i = 0) are skipped.
    fn frame_gradient(
        &self,
        networks: &[Network],
        offsets: &[usize],
        f: usize,
        h: &Functional,
        ws: &mut Workspace,
        gradient: &mut [f64],
    ) -> f64 {
        let frame = &self.frames[f];
        let mut value = 0.0;
        let has_virial = h.virial.iter().any(|&c| c != 0.0);
        for i in 0..frame.n_atoms() {
            let s = frame.types[i];
            let net = &networks[s];
            let m = net.n_in();
            grow(&mut ws.u, m);
            let u = &mut ws.u[..m];
            u.fill(0.0);
            if !h.displacement.is_empty() {
                let rows = &frame.rows[frame.row_at[i]..frame.row_at[i + 1]];
                let dx = &frame.dx[frame.dx_at[i]..frame.dx_at[i + 1]];
                for (r, &j) in rows.iter().enumerate() {
                    for a in 0..3 {
                        let d = h.displacement[j][a];
                        if d != 0.0 {
                            let row = &dx[(3 * r + a) * m..(3 * r + a + 1) * m];
                            u.iter_mut().zip(row).for_each(|(u, g)| *u += g * d);
                        }
                    }
                }
            }
            if has_virial {
                let w = &frame.virial[6 * frame.x_at[i]..6 * frame.x_at[i + 1]];
                for (v, &c) in h.virial.iter().enumerate() {
                    u.iter_mut()
                        .zip(&w[v * m..(v + 1) * m])
                        .for_each(|(u, w)| *u += w * c);
                }
            }
            if h.alpha == 0.0 && u.iter().all(|&x| x == 0.0) {
                continue;
            }
            let x = &frame.x[frame.x_at[i]..frame.x_at[i + 1]];
            let block = &mut gradient[offsets[s]..offsets[s] + net.n_parameters()];
            let (e, du) = net.directional_gradient(x, u, h.alpha, &mut ws.dual, block);
            value += h.alpha * e + du;
        }
        value
    }

    /// sum over `frames` of h_f and of d h_f / d theta (concatenated per species), with the
    /// functional h_f of each frame. Parallel over groups of frames, summed in a fixed order:
    /// the same result for every thread count.
    pub fn gradient(
        &self,
        networks: &[Network],
        frames: &[usize],
        functionals: &[Functional],
    ) -> Result<(f64, Vec<f64>)> {
        self.check_networks(networks)?;
        self.check_frames(frames)?;
        if functionals.len() != frames.len() {
            return Err(Error::invalid(format!(
                "one loss functional per frame: {} frames, {} functionals",
                frames.len(),
                functionals.len()
            )));
        }
        for (&f, h) in frames.iter().zip(functionals) {
            self.check_functional(f, h)?;
        }
        let (offsets, total) = Self::parameter_offsets(networks);
        let pairs: Vec<(usize, &Functional)> = frames.iter().copied().zip(functionals).collect();
        let parts: Vec<(f64, Vec<f64>)> = pairs
            .par_chunks(FRAMES_PER_TASK)
            .map_init(Workspace::default, |ws, chunk| {
                let mut g = vec![0.0; total];
                let mut value = 0.0;
                for (f, h) in chunk {
                    value += self.frame_gradient(networks, &offsets, *f, h, ws, &mut g);
                }
                (value, g)
            })
            .collect();
        let mut gradient = vec![0.0; total];
        let mut value = 0.0;
        for (v, g) in parts {
            value += v;
            gradient.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        Ok((value, gradient))
    }

    /// The gradient of one frame's functional, sequentially (for the Kalman filter, whose
    /// members run in parallel instead).
    fn frame_observation(
        &self,
        networks: &[Network],
        offsets: &[usize],
        total: usize,
        f: usize,
        h: &Functional,
        ws: &mut Workspace,
    ) -> (f64, Vec<f64>) {
        let mut g = vec![0.0; total];
        let value = self.frame_gradient(networks, offsets, f, h, ws, &mut g);
        (value, g)
    }
}

#[cfg(test)]
mod tests;
