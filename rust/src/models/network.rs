//! Behler-Parrinello atomic neural networks (Behler and Parrinello, Phys. Rev. Lett. 98,
//! 146401 (2007)) over any descriptor, for prediction. Atom i of species s has the energy
//!
//!   E_i = energy_scale_s * y_s(x_s) + energy_offset_s,
//!   x_s,k = offset_k + factor_k (X_ik - shift_k)    (k < n_in of the network of s),
//!
//! with y_s a feed-forward network of one output: layer l computes its neurons as
//! a_l = f_l(W_l a_(l-1) + b_l) (divided by the number of inputs of the layer before the
//! activation when `normalize_nodes` is set, as n2p2's `normalize_nodes`), a_0 = x_s.
//! The affine input map covers every symmetry-function scaling mode of n2p2 (`scale`,
//! `center`, `scale_center`, `scale_sigma`, none); the output map covers its energy
//! normalization. The activations are n2p2's, by their input.nn letter, with n2p2's formulas
//! (including its cutoff of the logistic and softplus at |x| > 35), so that a network with
//! n2p2's weights reproduces its atomic energies to rounding.
//!
//! A network term owns its weights: it has no columns and no rows (it is not linear in its
//! weights), and `predict` takes an empty weight vector. Forces and virial go through the
//! descriptor's adjoint with dE_i/dX_i = the network's input gradient.

use std::cell::RefCell;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Deserialize;

use super::{check_weights, Prediction, Rows, Term, TermPrediction};
use crate::descriptors::driver::{self, add_atom_forces, cutoff_by_number};
use crate::descriptors::Descriptor;
use crate::error::{Error, Result};
use crate::neighbors::NeighborList;
use crate::structure::Structure;

/// Atoms whose per-atom results are alive at once during a prediction.
const CHUNK: usize = 1024;

/// n2p2's EXP_LIMIT: beyond it the logistic and softplus take their asymptotes.
const EXP_LIMIT: f64 = 35.0;

// ------------------------------------------------------------------------ activations

/// The activation functions of n2p2 (`NeuralNetwork::ActivationFunction`), by their
/// input.nn letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// "l": x.
    Linear,
    /// "t": tanh x.
    Tanh,
    /// "s": 1 / (1 + e^-x); 1 above x = 35, 0 below -35 (slope 0 there).
    Logistic,
    /// "p": ln(1 + e^x); x above x = 35 (slope 1), 0 below -35 (slope 0).
    Softplus,
    /// "r": max(0, x) (slope 0 at x = 0).
    Relu,
    /// "g": e^(-x^2 / 2).
    Gaussian,
    /// "c": cos x.
    Cos,
    /// "S": 1 - 1 / (1 + e^-x).
    ReverseLogistic,
    /// "e": e^-x.
    Exp,
    /// "h": x^2.
    Harmonic,
}

impl Activation {
    /// Every activation, in n2p2's order.
    pub const ALL: [Activation; 10] = [
        Activation::Linear,
        Activation::Tanh,
        Activation::Logistic,
        Activation::Softplus,
        Activation::Relu,
        Activation::Gaussian,
        Activation::Cos,
        Activation::ReverseLogistic,
        Activation::Exp,
        Activation::Harmonic,
    ];

    /// The input.nn letter.
    pub fn letter(self) -> &'static str {
        match self {
            Activation::Linear => "l",
            Activation::Tanh => "t",
            Activation::Logistic => "s",
            Activation::Softplus => "p",
            Activation::Relu => "r",
            Activation::Gaussian => "g",
            Activation::Cos => "c",
            Activation::ReverseLogistic => "S",
            Activation::Exp => "e",
            Activation::Harmonic => "h",
        }
    }

    /// The activation of an input.nn letter; an unknown letter is an error listing them.
    pub fn from_letter(letter: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.letter() == letter)
            .ok_or_else(|| {
                let known: Vec<String> = Self::ALL
                    .iter()
                    .map(|a| format!("{:?} ({a:?})", a.letter()))
                    .collect();
                Error::invalid(format!(
                    "unknown activation {letter:?} (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// (f(x), f'(x)), with n2p2's formulas.
    #[inline]
    pub fn eval(self, x: f64) -> (f64, f64) {
        match self {
            Activation::Linear => (x, 1.0),
            Activation::Tanh => {
                let t = x.tanh();
                (t, 1.0 - t * t)
            }
            Activation::Logistic => {
                if x > EXP_LIMIT {
                    (1.0, 0.0)
                } else if x < -EXP_LIMIT {
                    (0.0, 0.0)
                } else {
                    let s = 1.0 / (1.0 + (-x).exp());
                    (s, s * (1.0 - s))
                }
            }
            Activation::Softplus => {
                if x > EXP_LIMIT {
                    (x, 1.0)
                } else if x < -EXP_LIMIT {
                    (0.0, 0.0)
                } else {
                    let e = x.exp();
                    ((1.0 + e).ln(), 1.0 / (1.0 + 1.0 / e))
                }
            }
            Activation::Relu => {
                if x > 0.0 {
                    (x, 1.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Activation::Gaussian => {
                let g = (-0.5 * x * x).exp();
                (g, -x * g)
            }
            Activation::Cos => (x.cos(), -x.sin()),
            Activation::ReverseLogistic => {
                // e^-x overflows to inf below x = -709: s = 0, which is the limit
                let s = 1.0 / (1.0 + (-x).exp());
                (1.0 - s, s * (s - 1.0))
            }
            Activation::Exp => {
                let e = (-x).exp();
                (e, -e)
            }
            Activation::Harmonic => (x * x, 2.0 * x),
        }
    }
}

// ------------------------------------------------------------------------ network

/// An error naming `what(k)` for the first value k that is not finite.
fn check_finite(values: &[f64], what: impl Fn(usize) -> String) -> Result<()> {
    match values.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(format!(
            "{} is not finite ({})",
            what(k),
            values[k]
        ))),
    }
}

/// One layer: `n_out` neurons of `n_in` inputs each.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    n_in: usize,
    n_out: usize,
    /// (n_out, n_in), row-major: weights[o * n_in + i] connects input i to neuron o.
    weights: Vec<f64>,
    /// (n_out,).
    biases: Vec<f64>,
    activation: Activation,
}

impl Layer {
    /// A layer from its weights (n_out x n_in, row-major), biases (n_out) and activation;
    /// the numbers must be finite.
    pub fn new(
        n_in: usize,
        weights: Vec<f64>,
        biases: Vec<f64>,
        activation: Activation,
    ) -> Result<Self> {
        let n_out = biases.len();
        if n_in == 0 || n_out == 0 {
            return Err(Error::invalid(format!(
                "a layer needs at least one input and one neuron, got {n_in} inputs and \
                 {n_out} neurons"
            )));
        }
        if Some(weights.len()) != n_out.checked_mul(n_in) {
            return Err(Error::invalid(format!(
                "a layer of {n_out} neurons with {n_in} inputs needs {n_out} x {n_in} weights, \
                 got {}",
                weights.len()
            )));
        }
        check_finite(&weights, |k| format!("weight [{}][{}]", k / n_in, k % n_in))?;
        check_finite(&biases, |k| format!("bias {k}"))?;
        Ok(Layer {
            n_in,
            n_out,
            weights,
            biases,
            activation,
        })
    }

    pub fn n_in(&self) -> usize {
        self.n_in
    }

    pub fn n_out(&self) -> usize {
        self.n_out
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }
}

/// The affine map of the raw inputs: x_s,k = offset_k + factor_k (x_k - shift_k).
#[derive(Debug, Clone, PartialEq)]
pub struct InputScaling {
    pub shift: Vec<f64>,
    pub factor: Vec<f64>,
    pub offset: Vec<f64>,
}

impl InputScaling {
    /// x_s = x, for `n` inputs.
    pub fn identity(n: usize) -> Self {
        InputScaling {
            shift: vec![0.0; n],
            factor: vec![1.0; n],
            offset: vec![0.0; n],
        }
    }
}

/// A feed-forward network of one output with an affine input map and an affine output map.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    layers: Vec<Layer>,
    scaling: InputScaling,
    energy_scale: f64,
    energy_offset: f64,
    normalize_nodes: bool,
}

/// One thread's scratch for `Network::evaluate`, reused from call to call (and from network
/// to network: it grows to the largest it has served).
#[derive(Debug, Clone, Default)]
pub struct NetworkWorkspace {
    /// The scaled inputs.
    inputs: Vec<f64>,
    /// The neurons' values and slopes f'(z), layer after layer.
    values: Vec<f64>,
    slopes: Vec<f64>,
    /// dE/dz of one layer and the next, on the way back.
    back: Vec<f64>,
    back_next: Vec<f64>,
}

impl Network {
    /// A network from its layers (layer l's inputs are layer l-1's neurons, the first
    /// layer's are the `scaling.shift.len()` scaled inputs, the last layer has one neuron).
    pub fn new(
        layers: Vec<Layer>,
        scaling: InputScaling,
        energy_scale: f64,
        energy_offset: f64,
        normalize_nodes: bool,
    ) -> Result<Self> {
        let first = layers
            .first()
            .ok_or_else(|| Error::invalid("a network needs at least one layer"))?;
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[1].n_in != pair[0].n_out {
                return Err(Error::invalid(format!(
                    "layer {} has {} inputs, but layer {l} has {} neurons",
                    l + 1,
                    pair[1].n_in,
                    pair[0].n_out
                )));
            }
        }
        let last = layers.last().expect("not empty");
        if last.n_out != 1 {
            return Err(Error::invalid(format!(
                "the last layer must have one neuron (the atomic energy), got {}",
                last.n_out
            )));
        }
        let n_in = first.n_in;
        for (name, v) in [
            ("input_shift", &scaling.shift),
            ("input_factor", &scaling.factor),
            ("input_offset", &scaling.offset),
        ] {
            if v.len() != n_in {
                return Err(Error::invalid(format!(
                    "{name} has {} values, but the first layer has {n_in} inputs",
                    v.len()
                )));
            }
            check_finite(v, |k| format!("{name}[{k}]"))?;
        }
        check_finite(&[energy_scale], |_| "energy_scale".into())?;
        check_finite(&[energy_offset], |_| "energy_offset".into())?;
        Ok(Network {
            layers,
            scaling,
            energy_scale,
            energy_offset,
            normalize_nodes,
        })
    }

    /// Inputs (the first features of the descriptor it reads).
    pub fn n_in(&self) -> usize {
        self.layers[0].n_in
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Neurons of all layers.
    fn n_neurons(&self) -> usize {
        self.layers.iter().map(|l| l.n_out).sum()
    }

    fn widest(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.n_in.max(l.n_out))
            .max()
            .unwrap_or(0)
    }

    /// Sizes `ws` for this network (allocating only when it is too small).
    fn prepare(&self, ws: &mut NetworkWorkspace) {
        let grow = |v: &mut Vec<f64>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        grow(&mut ws.inputs, self.n_in());
        grow(&mut ws.values, self.n_neurons());
        grow(&mut ws.slopes, self.n_neurons());
        grow(&mut ws.back, self.widest());
        grow(&mut ws.back_next, self.widest());
    }

    /// The energy E = energy_scale * y + energy_offset of the raw inputs `x` (n_in), and,
    /// when `gradient` is given (n_in), dE/dx through the input scaling. Allocation-free once
    /// `ws` has served a network this large.
    pub fn evaluate(
        &self,
        x: &[f64],
        ws: &mut NetworkWorkspace,
        gradient: Option<&mut [f64]>,
    ) -> f64 {
        let n_in = self.n_in();
        assert_eq!(x.len(), n_in, "a network of {n_in} inputs got {}", x.len());
        self.prepare(ws);
        let s = &self.scaling;
        for (k, (xs, x)) in ws.inputs.iter_mut().zip(x).enumerate() {
            *xs = s.offset[k] + s.factor[k] * (x - s.shift[k]);
        }
        // forward, in n2p2's order: z = (sum_j w_j a_j + b) [/ n_in], a = f(z)
        let mut start = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = ws.values.split_at_mut(start);
            let input: &[f64] = if l == 0 {
                &ws.inputs[..n_in]
            } else {
                &before[start - layer.n_in..]
            };
            let out = &mut rest[..layer.n_out];
            let slopes = &mut ws.slopes[start..start + layer.n_out];
            for o in 0..layer.n_out {
                let w = &layer.weights[o * layer.n_in..(o + 1) * layer.n_in];
                let mut z = 0.0;
                for (w, a) in w.iter().zip(input) {
                    z += w * a;
                }
                z += layer.biases[o];
                if self.normalize_nodes {
                    z /= layer.n_in as f64;
                }
                let (value, slope) = layer.activation.eval(z);
                out[o] = value;
                slopes[o] = slope;
            }
            start += layer.n_out;
        }
        let y = ws.values[start - 1];
        let energy = self.energy_scale * y + self.energy_offset;
        let Some(gradient) = gradient else {
            return energy;
        };
        assert_eq!(gradient.len(), n_in);
        // backward: back[o] = dE/dz_o of the current layer
        ws.back[0] = self.energy_scale * ws.slopes[start - 1];
        let mut end = start;
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let begin = end - layer.n_out;
            let into: &mut [f64] = if l == 0 {
                &mut gradient[..]
            } else {
                &mut ws.back_next[..layer.n_in]
            };
            into.fill(0.0);
            for o in 0..layer.n_out {
                let d = ws.back[o];
                let w = &layer.weights[o * layer.n_in..(o + 1) * layer.n_in];
                for (g, w) in into.iter_mut().zip(w) {
                    *g += d * w;
                }
            }
            if self.normalize_nodes {
                let n = layer.n_in as f64;
                into.iter_mut().for_each(|g| *g /= n);
            }
            if l > 0 {
                // dE/da_(l-1) -> dE/dz_(l-1)
                let slopes = &ws.slopes[begin - layer.n_in..begin];
                for (g, s) in into.iter_mut().zip(slopes) {
                    *g *= s;
                }
                std::mem::swap(&mut ws.back, &mut ws.back_next);
            }
            end = begin;
        }
        for (g, f) in gradient.iter_mut().zip(&s.factor) {
            *g *= f;
        }
        energy
    }
}

// ------------------------------------------------------------------------ JSON

/// The networks of a term as JSON: `{"networks": [entry, ...]}`, one entry per species
/// that has a network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworksSpec {
    pub networks: Vec<NetworkSpec>,
}

/// One species' network. Omitted input maps are the identity, `energy_scale` 1,
/// `energy_offset` 0, `normalize_nodes` false.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Atomic number.
    pub species: u32,
    pub layers: Vec<LayerSpec>,
    #[serde(default)]
    pub input_shift: Option<Vec<f64>>,
    #[serde(default)]
    pub input_factor: Option<Vec<f64>>,
    #[serde(default)]
    pub input_offset: Option<Vec<f64>>,
    #[serde(default = "one")]
    pub energy_scale: f64,
    #[serde(default)]
    pub energy_offset: f64,
    #[serde(default)]
    pub normalize_nodes: bool,
}

fn one() -> f64 {
    1.0
}

/// One layer: weights [n_out][n_in] (a list of rows, one per neuron), biases [n_out], the
/// activation's input.nn letter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    pub weights: Vec<Vec<f64>>,
    pub biases: Vec<f64>,
    pub activation: String,
}

impl NetworkSpec {
    pub fn build(&self) -> Result<Network> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, spec) in self.layers.iter().enumerate() {
            let at = |e: Error| Error::invalid(format!("layer {l}: {e}"));
            let n_in = spec.weights.first().map_or(0, |r| r.len());
            if let Some(o) = spec.weights.iter().position(|r| r.len() != n_in) {
                return Err(at(Error::invalid(format!(
                    "weight row {o} has {} values, row 0 has {n_in}",
                    spec.weights[o].len()
                ))));
            }
            if spec.weights.len() != spec.biases.len() {
                return Err(at(Error::invalid(format!(
                    "{} weight rows (neurons) but {} biases",
                    spec.weights.len(),
                    spec.biases.len()
                ))));
            }
            let activation = Activation::from_letter(&spec.activation).map_err(at)?;
            let weights = spec.weights.concat();
            layers.push(Layer::new(n_in, weights, spec.biases.clone(), activation).map_err(at)?);
        }
        let n_in = layers.first().map_or(0, |l| l.n_in);
        let or = |v: &Option<Vec<f64>>, x: f64| v.clone().unwrap_or_else(|| vec![x; n_in]);
        let scaling = InputScaling {
            shift: or(&self.input_shift, 0.0),
            factor: or(&self.input_factor, 1.0),
            offset: or(&self.input_offset, 0.0),
        };
        Network::new(
            layers,
            scaling,
            self.energy_scale,
            self.energy_offset,
            self.normalize_nodes,
        )
    }
}

// ------------------------------------------------------------------------ the term

/// Atomic neural networks on a descriptor as a model term: one network per species index
/// of the descriptor, or none. The network of species s reads the first `n_in` features of
/// the descriptor (n_in <= n_features: a descriptor pads shorter per-species feature lists
/// with zeros at the end).
///
/// An atom of a species without a network is an error naming its element (as in n2p2,
/// which refuses a structure with an element it has no network for), not a zero energy:
/// a silently missing energy would be a wrong prediction.
#[derive(Clone)]
pub struct NetworkTerm {
    descriptor: Arc<dyn Descriptor>,
    networks: Vec<Option<Network>>,
}

thread_local! {
    static WORKSPACE: RefCell<NetworkWorkspace> = RefCell::new(NetworkWorkspace::default());
}

impl NetworkTerm {
    /// The term of `networks`, given as (atomic number, network); each atomic number must be
    /// a species of the descriptor, given once.
    pub fn new(descriptor: Arc<dyn Descriptor>, networks: Vec<(u32, Network)>) -> Result<Self> {
        let species = descriptor.species().to_vec();
        let nf = descriptor.n_features();
        let mut by_index: Vec<Option<Network>> = vec![None; species.len()];
        for (z, network) in networks {
            let s = species.iter().position(|&x| x == z).ok_or_else(|| {
                Error::invalid(format!(
                    "a network for atomic number {z}, which is not in the species {species:?} \
                     of the {} descriptor",
                    descriptor.kind()
                ))
            })?;
            if by_index[s].is_some() {
                return Err(Error::invalid(format!(
                    "atomic number {z} has two networks"
                )));
            }
            if network.n_in() > nf {
                return Err(Error::invalid(format!(
                    "the network of atomic number {z} has {} inputs, but the {} descriptor \
                     has {nf} features",
                    network.n_in(),
                    descriptor.kind()
                )));
            }
            by_index[s] = Some(network);
        }
        Ok(NetworkTerm {
            descriptor,
            networks: by_index,
        })
    }

    /// The term of the networks as JSON (`NetworksSpec`).
    pub fn from_json(descriptor: Arc<dyn Descriptor>, json: &str) -> Result<Self> {
        let spec: NetworksSpec = serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("network parameters: {e}")))?;
        let networks = spec
            .networks
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let network = n.build().map_err(|e| {
                    Error::invalid(format!("networks[{k}] (atomic number {}): {e}", n.species))
                })?;
                Ok((n.species, network))
            })
            .collect::<Result<Vec<_>>>()?;
        NetworkTerm::new(descriptor, networks)
    }

    pub fn descriptor(&self) -> &dyn Descriptor {
        self.descriptor.as_ref()
    }

    /// The network of atomic number `z`, if it has one.
    pub fn network(&self, z: u32) -> Option<&Network> {
        let s = self.descriptor.species().iter().position(|&x| x == z)?;
        self.networks[s].as_ref()
    }

    /// The energies (n) and input gradients (n, n_in) of atomic number z's network on `n`
    /// rows of raw features (n, n_in), row-major: for tests and diagnostics.
    pub fn network_outputs(&self, z: u32, features: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let network = self.network(z).ok_or_else(|| {
            Error::invalid(format!("atomic number {z} has no network in this term"))
        })?;
        let n_in = network.n_in();
        if features.len() % n_in != 0 {
            return Err(Error::invalid(format!(
                "features must have shape (n, {n_in}), got {} values",
                features.len()
            )));
        }
        check_finite(features, |k| {
            format!("feature [{}][{}]", k / n_in, k % n_in)
        })?;
        let n = features.len() / n_in;
        let mut energies = vec![0.0; n];
        let mut gradients = vec![0.0; n * n_in];
        energies
            .par_iter_mut()
            .zip(gradients.par_chunks_mut(n_in))
            .zip(features.par_chunks(n_in))
            .for_each_init(NetworkWorkspace::default, |ws, ((e, g), x)| {
                *e = network.evaluate(x, ws, Some(g));
            });
        check_finite(&energies, |k| {
            format!("the output of the network of atomic number {z} for row {k}")
        })?;
        Ok((energies, gradients))
    }

    /// Checks that every atom of `types` has a network.
    fn check_types(&self, types: &[usize]) -> Result<()> {
        if let Some(i) = types.iter().position(|&t| self.networks[t].is_none()) {
            return Err(Error::invalid(format!(
                "atom {i} has atomic number {}, which has no network in this term",
                self.descriptor.species()[types[i]]
            )));
        }
        Ok(())
    }
}

impl Term for NetworkTerm {
    fn pair_cutoff(&self, zi: u32, zj: u32) -> f64 {
        cutoff_by_number(self.descriptor.as_ref(), zi, zj)
    }

    fn n_columns(&self) -> usize {
        0
    }

    fn rows(&self, _: &Structure, _: &NeighborList) -> Result<Rows> {
        Err(Error::invalid(
            "a neural-network term has no rows: it is not linear in its weights (it owns \
             them), so it cannot be fitted by a linear solve",
        ))
    }

    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        weights: &[f64],
        per_atom_rows: bool,
    ) -> Result<TermPrediction> {
        check_weights(weights, 0, "a neural-network term owns its weights")?;
        if per_atom_rows {
            return Err(Error::invalid(
                "a neural-network term has no per-atom rows (it is not linear in its weights)",
            ));
        }
        let d = self.descriptor.as_ref();
        let types = driver::types(d, structure)?;
        self.check_types(&types)?;
        let mut p = Prediction::zeros(structure.len());
        driver::for_each_atom_forces(
            d,
            structure,
            list,
            CHUNK,
            |i, x, de| {
                let network = self.networks[types[i]].as_ref().expect("checked");
                let n = network.n_in();
                WORKSPACE.with_borrow_mut(|ws| network.evaluate(&x[..n], ws, Some(&mut de[..n])))
            },
            |i, atom| {
                p.energies[i] = atom.result;
                add_atom_forces(&atom, &mut p.forces, &mut p.virial);
            },
        )?;
        if let Some(i) = p.energies.iter().position(|e| !e.is_finite()) {
            return Err(Error::invalid(format!(
                "the network gives atom {i} (atomic number {}) a non-finite energy ({})",
                structure.numbers()[i],
                p.energies[i]
            )));
        }
        if let Some(i) = p
            .forces
            .iter()
            .position(|f| !f.iter().all(|x| x.is_finite()))
        {
            return Err(Error::invalid(format!(
                "the network gives atom {i} a non-finite force"
            )));
        }
        Ok(TermPrediction {
            prediction: p,
            per_atom_rows: None,
        })
    }
}

#[cfg(test)]
mod tests;
