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

    /// (f(x), f'(x), f''(x)), for training (the curvature enters the gradient of the force
    /// loss with respect to the weights). Where n2p2 cuts an activation off (|x| > 35) the
    /// curvature is that of the asymptote, 0.
    #[inline]
    pub fn eval2(self, x: f64) -> (f64, f64, f64) {
        let (f, d) = self.eval(x);
        let dd = match self {
            Activation::Linear | Activation::Relu => 0.0,
            Activation::Tanh => -2.0 * f * d,
            Activation::Logistic => {
                if x.abs() > EXP_LIMIT {
                    0.0
                } else {
                    d * (1.0 - 2.0 * f)
                }
            }
            Activation::Softplus => {
                if x.abs() > EXP_LIMIT {
                    0.0
                } else {
                    d * (1.0 - d)
                }
            }
            Activation::Gaussian => (x * x - 1.0) * f,
            Activation::Cos => -f,
            // f' = s (s - 1) with s = 1 - f: f'' = s' (2 s - 1) = s (1 - s) (2 s - 1)
            Activation::ReverseLogistic => {
                let s = 1.0 - f;
                s * (1.0 - s) * (2.0 * s - 1.0)
            }
            Activation::Exp => f,
            Activation::Harmonic => 2.0,
        };
        (f, d, dd)
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

    /// Weights and biases of all layers: the trainable parameters.
    pub fn n_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights.len() + l.biases.len())
            .sum()
    }

    /// The parameters in training order: layer by layer, the weights (row-major, neuron by
    /// neuron) and then the biases.
    pub fn parameters(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.n_parameters());
        for l in &self.layers {
            out.extend_from_slice(&l.weights);
            out.extend_from_slice(&l.biases);
        }
        out
    }

    /// Sets the parameters (in the order of `parameters`); they must be finite.
    pub fn set_parameters(&mut self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.n_parameters() {
            return Err(Error::invalid(format!(
                "the network has {} parameters, got {}",
                self.n_parameters(),
                theta.len()
            )));
        }
        check_finite(theta, |k| format!("parameter {k}"))?;
        let mut k = 0;
        for l in &mut self.layers {
            let nw = l.weights.len();
            l.weights.copy_from_slice(&theta[k..k + nw]);
            k += nw;
            let nb = l.biases.len();
            l.biases.copy_from_slice(&theta[k..k + nb]);
            k += nb;
        }
        Ok(())
    }

    /// The input scaling.
    pub fn scaling(&self) -> &InputScaling {
        &self.scaling
    }

    pub fn energy_scale(&self) -> f64 {
        self.energy_scale
    }

    pub fn normalize_nodes(&self) -> bool {
        self.normalize_nodes
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
/// that has a network, and for a committee `"committee": [[entry, ...], ...]`, the networks
/// of its further members (each with the species of the first).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworksSpec {
    pub networks: Vec<NetworkSpec>,
    #[serde(default)]
    pub committee: Vec<Vec<NetworkSpec>>,
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

/// One member's prediction of a structure.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberPrediction {
    /// Per atom, eV.
    pub energies: Vec<f64>,
    /// eV/Angstrom.
    pub forces: Vec<[f64; 3]>,
    /// eV, Voigt order.
    pub virial: [f64; 6],
}

/// Atomic neural networks on a descriptor as a model term: one network per species index
/// of the descriptor, or none. The network of species s reads the first `n_in` features of
/// the descriptor (n_in <= n_features: a descriptor pads shorter per-species feature lists
/// with zeros at the end).
///
/// An atom of a species without a network is an error naming its element (as in n2p2,
/// which refuses a structure with an element it has no network for), not a zero energy:
/// a silently missing energy would be a wrong prediction.
///
/// A committee (Deringer, Caro and Csanyi, Adv. Mater. 31, 1902765 (2019)) holds K members
/// of networks for the same species: the term predicts their mean (the mean energy, whose
/// slopes are the mean slopes, so one adjoint pass gives the mean forces), and
/// `predict_members` gives each member's prediction from one descriptor pass.
#[derive(Clone)]
pub struct NetworkTerm {
    descriptor: Arc<dyn Descriptor>,
    /// members[k][s]: member k's network of species index s.
    members: Vec<Vec<Option<Network>>>,
}

thread_local! {
    // boxed: an inline workspace grows the static TLS block, which broke loading other
    // extensions that need static TLS (libgomp) after this one
    static WORKSPACE: RefCell<Box<(NetworkWorkspace, Vec<f64>)>> = RefCell::new(Box::default());
}

impl NetworkTerm {
    /// The term of `networks`, given as (atomic number, network); each atomic number must be
    /// a species of the descriptor, given once.
    pub fn new(descriptor: Arc<dyn Descriptor>, networks: Vec<(u32, Network)>) -> Result<Self> {
        let by_index = Self::by_index(descriptor.as_ref(), networks)?;
        Ok(NetworkTerm {
            descriptor,
            members: vec![by_index],
        })
    }

    /// A committee of members, each given as `new` takes its networks; every member has
    /// networks for the same species.
    pub fn committee(
        descriptor: Arc<dyn Descriptor>,
        members: Vec<Vec<(u32, Network)>>,
    ) -> Result<Self> {
        if members.is_empty() {
            return Err(Error::invalid("a committee needs at least one member"));
        }
        let members = members
            .into_iter()
            .enumerate()
            .map(|(k, m)| {
                Self::by_index(descriptor.as_ref(), m)
                    .map_err(|e| e.context(&format!("committee member {k}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let has = |m: &Vec<Option<Network>>| m.iter().map(Option::is_some).collect::<Vec<_>>();
        if let Some(k) = members.iter().position(|m| has(m) != has(&members[0])) {
            return Err(Error::invalid(format!(
                "committee member {k} has networks for other species than member 0"
            )));
        }
        Ok(NetworkTerm {
            descriptor,
            members,
        })
    }

    /// Members of the committee (1 for a single set of networks).
    pub fn n_members(&self) -> usize {
        self.members.len()
    }

    fn by_index(
        descriptor: &dyn Descriptor,
        networks: Vec<(u32, Network)>,
    ) -> Result<Vec<Option<Network>>> {
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
        Ok(by_index)
    }

    /// The term of the networks as JSON (`NetworksSpec`).
    pub fn from_json(descriptor: Arc<dyn Descriptor>, json: &str) -> Result<Self> {
        let spec: NetworksSpec = serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("network parameters: {e}")))?;
        let build = |specs: &[NetworkSpec], what: &str| {
            specs
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    let network = n.build().map_err(|e| {
                        Error::invalid(format!("{what}[{k}] (atomic number {}): {e}", n.species))
                    })?;
                    Ok((n.species, network))
                })
                .collect::<Result<Vec<_>>>()
        };
        let mut members = vec![build(&spec.networks, "networks")?];
        for (k, m) in spec.committee.iter().enumerate() {
            members.push(build(m, &format!("committee[{k}]"))?);
        }
        NetworkTerm::committee(descriptor, members)
    }

    pub fn descriptor(&self) -> &dyn Descriptor {
        self.descriptor.as_ref()
    }

    /// The network of atomic number `z` (of the first member), if it has one.
    pub fn network(&self, z: u32) -> Option<&Network> {
        let s = self.descriptor.species().iter().position(|&x| x == z)?;
        self.members[0][s].as_ref()
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

    /// The networks, one per species index, for training: every species needs one.
    pub fn training_networks(&self) -> Result<Vec<Network>> {
        self.members[0]
            .iter()
            .zip(self.descriptor.species())
            .map(|(n, z)| {
                n.clone().ok_or_else(|| {
                    Error::invalid(format!(
                        "atomic number {z} has no network: training needs one per species"
                    ))
                })
            })
            .collect()
    }

    /// The same term with other networks (one per species index, as `training_networks`
    /// gives them, with their weights trained).
    pub fn with_networks(&self, networks: Vec<Network>) -> Result<Self> {
        let species = self.descriptor.species().to_vec();
        if networks.len() != species.len() {
            return Err(Error::invalid(format!(
                "{} networks for {} species",
                networks.len(),
                species.len()
            )));
        }
        NetworkTerm::new(
            self.descriptor.clone(),
            species.into_iter().zip(networks).collect(),
        )
    }

    /// The committee's mean energy of an atom of species index t at X_i = x, with its
    /// slopes into `de` (zeroed, n_features).
    fn mean_energy(&self, t: usize, x: &[f64], de: &mut [f64]) -> f64 {
        let k = self.members.len() as f64;
        WORKSPACE.with_borrow_mut(|boxed| {
            let (ws, g) = &mut **boxed;
            let mut energy = 0.0;
            for member in &self.members {
                let network = member[t].as_ref().expect("checked");
                let n = network.n_in();
                if g.len() < n {
                    g.resize(n, 0.0);
                }
                energy += network.evaluate(&x[..n], ws, Some(&mut g[..n]));
                de[..n].iter_mut().zip(&g[..n]).for_each(|(d, g)| *d += g);
            }
            de.iter_mut().for_each(|d| *d /= k);
            energy / k
        })
    }

    /// Each member's per-atom energies, forces and virial, from one pass over the
    /// descriptor and its gradients (computed once for all members).
    pub fn predict_members(
        &self,
        structure: &Structure,
        list: &NeighborList,
    ) -> Result<Vec<MemberPrediction>> {
        let d = self.descriptor.as_ref();
        let types = driver::types(d, structure)?;
        self.check_types(&types)?;
        let n = structure.len();
        let k = self.members.len();
        let mut out = vec![
            MemberPrediction {
                energies: vec![0.0; n],
                forces: vec![[0.0; 3]; n],
                virial: [0.0; 6],
            };
            k
        ];
        let nf = d.n_features();
        driver::for_each_atom_gradients(
            d,
            structure,
            list,
            CHUNK,
            |atom| {
                // per member: E_i, then the force contributions of each row and the virial
                let t = types[atom.center];
                let per_member = WORKSPACE.with_borrow_mut(|boxed| {
                    let (ws, g) = &mut **boxed;
                    self.members
                        .iter()
                        .map(|member| {
                            let network = member[t].as_ref().expect("checked");
                            let m = network.n_in();
                            if g.len() < m {
                                g.resize(m, 0.0);
                            }
                            let g = &mut g[..m];
                            let e = network.evaluate(&atom.values[..m], ws, Some(g));
                            let forces: Vec<[f64; 3]> = (0..atom.rows.len())
                                .map(|r| {
                                    std::array::from_fn(|a| {
                                        let at = (3 * r + a) * nf;
                                        -crate::linalg::dot(&atom.gradients[at..at + m], g)
                                    })
                                })
                                .collect();
                            let virial: [f64; 6] = std::array::from_fn(|v| {
                                crate::linalg::dot(&atom.virial[v * nf..v * nf + m], g)
                            });
                            (e, forces, virial)
                        })
                        .collect::<Vec<_>>()
                });
                (atom.rows.to_vec(), per_member)
            },
            |i, (rows, results)| {
                for (p, (e, forces, virial)) in out.iter_mut().zip(results) {
                    p.energies[i] = e;
                    for (&j, f) in rows.iter().zip(&forces) {
                        for a in 0..3 {
                            p.forces[j][a] += f[a];
                        }
                    }
                    for v in 0..6 {
                        p.virial[v] += virial[v];
                    }
                }
            },
        )?;
        Ok(out)
    }

    /// Checks that every atom of `types` has a network.
    fn check_types(&self, types: &[usize]) -> Result<()> {
        if let Some(i) = types.iter().position(|&t| self.members[0][t].is_none()) {
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
            |i, x, de| self.mean_energy(types[i], x, de),
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

pub mod training;

#[cfg(test)]
mod tests;
