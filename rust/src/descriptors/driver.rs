//! Everything per structure, written once over the `Descriptor` trait: the neighbor list a
//! model shares between its terms, each atom's gradient rows, the parallel loops with their
//! buffers and memory checks, streaming one neighbourhood at a time, the adjoint and the
//! forward-mode product.
//!
//! Determinism: atoms run in parallel, but every reduction over atoms (forces, virials)
//! runs in atom order on the calling thread, so results do not depend on the thread count.

use std::any::Any;

use rayon::prelude::*;

use super::{
    bytes_of, calloc_checked, descriptor_neighbors, ensure_work_fits, max_neighbors,
    split_by_offsets, Descriptor, Env, Gradients, Need,
};
use crate::error::{Error, Result};
use crate::neighbors::{Cutoff, NeighborList};
use crate::structure::Structure;

/// Atoms whose per-atom results are alive at once while streaming.
const CHUNK: usize = 1024;

/// Each atom's species index in `d.species()`; an atom of another element is an error.
pub fn types<D: Descriptor + ?Sized>(d: &D, structure: &Structure) -> Result<Vec<usize>> {
    let species = d.species();
    structure
        .numbers()
        .iter()
        .enumerate()
        .map(|(i, z)| {
            species.iter().position(|s| s == z).ok_or_else(|| {
                Error::invalid(format!(
                    "atom {i} has atomic number {z}, which is not in the species {species:?} \
                     of this {} descriptor",
                    d.kind()
                ))
            })
        })
        .collect()
}

/// The pair cutoff of `d` between atomic numbers (0 when either is not a species of d).
pub fn cutoff_by_number<D: Descriptor + ?Sized>(d: &D, zi: u32, zj: u32) -> f64 {
    let index = |z: u32| d.species().iter().position(|&s| s == z);
    match (index(zi), index(zj)) {
        (Some(a), Some(b)) => d.pair_cutoff(a, b),
        _ => 0.0,
    }
}

/// The neighbor list of `structure` with the cutoff `pair_cutoff(Z_i, Z_j)` for every pair
/// of the elements present (one number when they are all the same); coincident atoms are
/// an error. This is the one list a model builds per structure: `pair_cutoff` is the
/// largest over its terms.
pub fn shared_list(
    structure: &Structure,
    pair_cutoff: &dyn Fn(u32, u32) -> f64,
) -> Result<NeighborList> {
    let numbers = structure.numbers();
    let mut present: Vec<u32> = numbers.to_vec();
    present.sort_unstable();
    present.dedup();
    let n_types = present.len();
    let table: Vec<f64> = (0..n_types * n_types)
        .map(|ab| pair_cutoff(present[ab / n_types], present[ab % n_types]))
        .collect();
    if let Some(bad) = table.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(Error::invalid(format!(
            "pair cutoffs must be finite and >= 0 Angstrom, got {bad}"
        )));
    }
    let largest = table.iter().cloned().fold(0.0, f64::max);
    if largest == 0.0 {
        // nothing interacts (or no atoms): an empty list, which the neighbor search refuses
        return Ok(NeighborList {
            offsets: vec![0; numbers.len() + 1],
            neighbors: Vec::new(),
            shifts: Vec::new(),
            vectors: Vec::new(),
            distances: Vec::new(),
        });
    }
    let cutoff = if table.iter().all(|&c| c == largest) {
        Cutoff::Uniform(largest)
    } else {
        let types = numbers
            .iter()
            .map(|z| present.binary_search(z).unwrap())
            .collect();
        Cutoff::TypePairs {
            types,
            n_types,
            table,
        }
    };
    descriptor_neighbors(structure, &cutoff)
}

/// The neighbor list of `d` alone.
pub fn own_list<D: Descriptor + ?Sized>(d: &D, structure: &Structure) -> Result<NeighborList> {
    shared_list(structure, &|zi, zj| cutoff_by_number(d, zi, zj))
}

/// Checks that `list` belongs to `structure`.
pub fn check_list(structure: &Structure, list: &NeighborList) -> Result<()> {
    if list.n_atoms() != structure.len() {
        return Err(Error::invalid(format!(
            "the neighbor list has {} atoms, the structure {}",
            list.n_atoms(),
            structure.len()
        )));
    }
    Ok(())
}

/// Whether pair `pair` of atom i is within `d`'s cutoff (the list may reach further).
#[inline]
pub fn within<D: Descriptor + ?Sized>(d: &D, env: &Env, i: usize, pair: usize) -> bool {
    let j = env.list.neighbors[pair];
    env.list.distances[pair] < d.pair_cutoff(env.types[i], env.types[j])
}

/// The gradient rows of atom i: the distinct atoms within its cutoffs and i itself, sorted.
pub fn atom_rows<D: Descriptor + ?Sized>(d: &D, env: &Env, i: usize, rows: &mut Vec<usize>) {
    rows.clear();
    rows.extend(
        env.list
            .pairs_of(i)
            .filter(|&p| within(d, env, i, p))
            .map(|p| env.list.neighbors[p]),
    );
    rows.push(i);
    rows.sort_unstable();
    rows.dedup();
}

fn prepare<D: Descriptor + ?Sized>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
) -> Result<Vec<usize>> {
    check_list(structure, list)?;
    types(d, structure)
}

/// Per-atom X, (n_atoms, n_features) row-major.
pub fn values<D: Descriptor + ?Sized>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
) -> Result<Vec<f64>> {
    let types = prepare(d, structure, list)?;
    let env = Env { list, types: &types };
    let (n, nf) = (structure.len(), d.n_features());
    let what = || d.describe("", n);
    let scratch = d.scratch_bytes(max_neighbors(list), Need::Values);
    ensure_work_fits(bytes_of::<f64>(n as u128 * nf as u128), scratch, what)?;
    let mut out = calloc_checked(n * nf, what)?;
    if nf > 0 {
        out.par_chunks_mut(nf).enumerate().for_each_init(
            || d.workspace(),
            |ws, (i, row)| d.atom_values(&env, i, ws.as_mut(), row),
        );
    }
    Ok(out)
}

/// Per-atom X with dX_i/dr_j and the per-atom virials.
pub fn gradients<D: Descriptor + ?Sized>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
) -> Result<Gradients> {
    let types = prepare(d, structure, list)?;
    let env = Env { list, types: &types };
    let (n_atoms, nf) = (structure.len(), d.n_features());
    let what = || d.describe("gradients", n_atoms);
    // atom i has at most its neighbors and itself as gradient rows
    let rows_bound = (list.n_pairs() + n_atoms) as u128;
    let floats = (3 * rows_bound + 7 * n_atoms as u128) * nf as u128;
    let size = bytes_of::<f64>(floats) + bytes_of::<usize>(3 * rows_bound);
    let scratch = d.scratch_bytes(max_neighbors(list), Need::Gradients);
    ensure_work_fits(size, scratch, what)?;

    // each atom's rows, counted first and then written in place: a flat layout, with no
    // small allocation per atom
    let row_counts: Vec<usize> = (0..n_atoms)
        .into_par_iter()
        .map_init(Vec::new, |rows, i| {
            atom_rows(d, &env, i, rows);
            rows.len()
        })
        .collect();
    let mut row_offsets = Vec::with_capacity(n_atoms + 1);
    row_offsets.push(0);
    for count in &row_counts {
        row_offsets.push(row_offsets.last().unwrap() + count);
    }
    let n_rows = row_offsets[n_atoms];
    let mut centers = calloc_checked(n_rows, what)?;
    let mut atoms = calloc_checked(n_rows, what)?;
    split_by_offsets(&mut centers, &row_offsets, 1)
        .into_par_iter()
        .zip(split_by_offsets(&mut atoms, &row_offsets, 1))
        .enumerate()
        .for_each_init(Vec::new, |rows, (i, (c, a))| {
            atom_rows(d, &env, i, rows);
            c.fill(i);
            a.copy_from_slice(rows);
        });

    // zeroed allocations come from fresh pages without a memset: the parallel loop below
    // touches them first, so the kernel clears them in parallel
    let mut descriptors = calloc_checked(n_atoms * nf, what)?;
    let mut values = calloc_checked(n_rows * 3 * nf, what)?;
    let mut virial = calloc_checked(n_atoms * 6 * nf, what)?;
    if nf > 0 {
        let value_rows = split_by_offsets(&mut values, &row_offsets, 3 * nf);
        descriptors
            .par_chunks_mut(nf)
            .zip(virial.par_chunks_mut(6 * nf))
            .zip(value_rows)
            .enumerate()
            .for_each_init(
                || d.workspace(),
                |ws, (i, ((x, w), g))| {
                    let rows = &atoms[row_offsets[i]..row_offsets[i + 1]];
                    d.atom_gradients(&env, i, ws.as_mut(), rows, x, g, w)
                },
            );
    }
    Ok(Gradients {
        descriptors,
        centers,
        atoms,
        values,
        virial,
    })
}

/// One atom's descriptor and derivatives, laid out as `gradients` lays out that atom's part.
pub struct AtomGradients<'a> {
    pub center: usize,
    /// The atoms of the gradient rows: the distinct neighbors and the centre, sorted.
    pub rows: &'a [usize],
    /// X_i, (n_features).
    pub values: &'a [f64],
    /// dX_i/dr_j, (rows, 3, n_features).
    pub gradients: &'a [f64],
    /// W_i = -sum_j (dX_i/dr_ij) (x) r_ij in Voigt order, (6, n_features).
    pub virial: &'a [f64],
}

/// Streams the atoms with their gradients, so that a model contracts them as they come
/// instead of storing the gradients of the whole structure: `map` runs on `chunk` atoms at
/// a time in parallel, and `consume` receives its results in atom order.
pub fn for_each_atom_gradients<D: Descriptor + ?Sized, T: Send>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
    chunk: usize,
    map: impl Fn(AtomGradients<'_>) -> T + Sync,
    mut consume: impl FnMut(usize, T),
) -> Result<()> {
    let types = prepare(d, structure, list)?;
    let env = Env { list, types: &types };
    let scratch = d.scratch_bytes(max_neighbors(list), Need::Gradients);
    ensure_work_fits(0, scratch, || {
        d.describe("gradients", structure.len())
    })?;
    let (n, nf) = (structure.len(), d.n_features());
    let chunk = chunk.max(1);
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let results: Vec<T> = (start..end)
            .into_par_iter()
            .map_init(
                || (d.workspace(), Vec::new(), vec![0.0; nf], Vec::new(), vec![0.0; 6 * nf]),
                |(ws, rows, x, g, w), i| {
                    atom_rows(d, &env, i, rows);
                    g.clear();
                    g.resize(rows.len() * 3 * nf, 0.0);
                    w.fill(0.0);
                    d.atom_gradients(&env, i, ws.as_mut(), rows, x, g, w);
                    map(AtomGradients {
                        center: i,
                        rows,
                        values: x,
                        gradients: g,
                        virial: w,
                    })
                },
            )
            .collect();
        for (k, r) in results.into_iter().enumerate() {
            consume(start + k, r);
        }
    }
    Ok(())
}

/// What `for_each_atom_forces` hands back per atom.
pub struct AtomForces<T> {
    /// The model's own result for the atom (`energy_slope`'s return value).
    pub result: T,
    /// X_i.
    pub values: Vec<f64>,
    /// -dE_i/dr_j as (j, force), eV/Angstrom.
    pub forces: Vec<(usize, [f64; 3])>,
    /// -sum_j (dE_i/dr_ij)_a (r_ij)_b, Voigt order, eV.
    pub virial: [f64; 6],
}

/// Streams, for a model whose local energy E_i depends on X_i alone, each atom's
/// contribution to the forces and virial through the descriptor's adjoint:
/// `energy_slope(i, X_i, de)` writes dE_i/dX_i into `de` and returns the model's result
/// for the atom. `consume` receives the atoms in order.
pub fn for_each_atom_forces<D: Descriptor + ?Sized, T: Send>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
    chunk: usize,
    energy_slope: impl Fn(usize, &[f64], &mut [f64]) -> T + Sync,
    mut consume: impl FnMut(usize, AtomForces<T>),
) -> Result<()> {
    let types = prepare(d, structure, list)?;
    let env = Env { list, types: &types };
    let scratch = d.scratch_bytes(max_neighbors(list), Need::Backprop);
    ensure_work_fits(0, scratch, || {
        d.describe("forces", structure.len())
    })?;
    let (n, nf) = (structure.len(), d.n_features());
    let chunk = chunk.max(1);
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let results: Vec<AtomForces<T>> = (start..end)
            .into_par_iter()
            .map_init(
                || d.workspace(),
                |ws, i| {
                    let mut values = vec![0.0; nf];
                    let mut forces = Vec::new();
                    let mut virial = [0.0; 6];
                    let mut result = None;
                    d.atom_backprop(
                        &env,
                        i,
                        ws.as_mut(),
                        &mut values,
                        &mut |x, de| result = Some(energy_slope(i, x, de)),
                        &mut forces,
                        &mut virial,
                    );
                    AtomForces {
                        result: result.expect("atom_backprop calls the slope once"),
                        values,
                        forces,
                        virial,
                    }
                },
            )
            .collect();
        for (k, r) in results.into_iter().enumerate() {
            consume(start + k, r);
        }
    }
    Ok(())
}

/// The result of the adjoint for E = sum_i dE/dX_i . X_i at fixed dE/dX.
#[derive(Debug, Clone)]
pub struct Backprop {
    /// (n_atoms, n_features), computed on the way.
    pub descriptors: Vec<f64>,
    /// -dE/dr_k per atom, eV/Angstrom.
    pub forces: Vec<[f64; 3]>,
    /// -sum over pairs of (dE/dr_ij)_a (r_ij)_b, Voigt order, eV.
    pub virial: [f64; 6],
}

/// Checks an (n_atoms, n_features) array of per-atom slopes.
fn check_slopes(name: &str, x: &[f64], n_atoms: usize, nf: usize) -> Result<()> {
    if x.len() != n_atoms * nf {
        return Err(Error::invalid(format!(
            "{name} must have shape (n_atoms, n_features) = ({n_atoms}, {nf}), got {} values",
            x.len()
        )));
    }
    if let Some(k) = x.iter().position(|b| !b.is_finite()) {
        return Err(Error::invalid(format!(
            "{name} of atom {} is not finite",
            k / nf.max(1)
        )));
    }
    Ok(())
}

/// Forces and virial of E = sum_i de_dx_i . X_i (de_dx: (n_atoms, n_features)) through the
/// descriptor's adjoint, never storing dX/dr.
pub fn backprop<D: Descriptor + ?Sized>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
    de_dx: &[f64],
) -> Result<Backprop> {
    let (n, nf) = (structure.len(), d.n_features());
    check_slopes("dE/dX", de_dx, n, nf)?;
    let what = || d.describe("forces", n);
    let mut descriptors = calloc_checked(n * nf, what)?;
    let mut forces = vec![[0.0; 3]; n];
    let mut virial = [0.0; 6];
    for_each_atom_forces(
        d,
        structure,
        list,
        CHUNK,
        |i, _, de| de.copy_from_slice(&de_dx[i * nf..(i + 1) * nf]),
        |i, atom| {
            add_atom_forces(&atom, &mut forces, &mut virial);
            descriptors[i * nf..(i + 1) * nf].copy_from_slice(&atom.values);
        },
    )?;
    Ok(Backprop {
        descriptors,
        forces,
        virial,
    })
}

/// Adds one atom's force contributions and virial to the totals.
pub fn add_atom_forces<T>(atom: &AtomForces<T>, forces: &mut [[f64; 3]], virial: &mut [f64; 6]) {
    for &(j, f) in &atom.forces {
        for a in 0..3 {
            forces[j][a] += f[a];
        }
    }
    for v in 0..6 {
        virial[v] += atom.virial[v];
    }
}

/// The forward-mode product: dX_i = sum_k (dX_i/dr_k) . u_k for a displacement field u
/// (n_atoms), (n_atoms, n_features). The change of every atom's features along u, without
/// storing dX/dr of the structure.
pub fn forward<D: Descriptor + ?Sized>(
    d: &D,
    structure: &Structure,
    list: &NeighborList,
    displacement: &[[f64; 3]],
) -> Result<Vec<f64>> {
    let (n, nf) = (structure.len(), d.n_features());
    if displacement.len() != n {
        return Err(Error::invalid(format!(
            "the displacement must have shape (n_atoms, 3) = ({n}, 3), got ({}, 3)",
            displacement.len()
        )));
    }
    if let Some(k) = displacement
        .iter()
        .position(|u| !u.iter().all(|x| x.is_finite()))
    {
        return Err(Error::invalid(format!(
            "the displacement of atom {k} is not finite"
        )));
    }
    let mut out = calloc_checked(n * nf, || d.describe("forward-mode product", n))?;
    for_each_atom_gradients(
        d,
        structure,
        list,
        CHUNK,
        |atom| {
            let mut dx = vec![0.0; nf];
            for (r, &j) in atom.rows.iter().enumerate() {
                for a in 0..3 {
                    let g = &atom.gradients[(3 * r + a) * nf..(3 * r + a + 1) * nf];
                    let u = displacement[j][a];
                    dx.iter_mut().zip(g).for_each(|(o, g)| *o += g * u);
                }
            }
            dx
        },
        |i, dx| out[i * nf..(i + 1) * nf].copy_from_slice(&dx),
    )?;
    Ok(out)
}

/// Structure-level calls of a descriptor with its own neighbor list.
pub trait DescriptorExt: Descriptor {
    /// Per-atom X, (n_atoms, n_features).
    fn compute(&self, structure: &Structure) -> Result<Vec<f64>> {
        values(self, structure, &own_list(self, structure)?)
    }
    /// X with dX/dr and the per-atom virials.
    fn compute_with_gradients(&self, structure: &Structure) -> Result<Gradients> {
        gradients(self, structure, &own_list(self, structure)?)
    }
    /// Forces and virial of E = sum_i de_dx_i . X_i.
    fn backprop(&self, structure: &Structure, de_dx: &[f64]) -> Result<Backprop> {
        backprop(self, structure, &own_list(self, structure)?, de_dx)
    }
    /// dX along the displacement field u.
    fn forward(&self, structure: &Structure, u: &[[f64; 3]]) -> Result<Vec<f64>> {
        forward(self, structure, &own_list(self, structure)?, u)
    }
}

impl<D: Descriptor + ?Sized> DescriptorExt for D {}

/// Downcasts a workspace made by `Descriptor::workspace` of the same descriptor type.
pub fn workspace_of<W: 'static>(ws: &mut dyn Any) -> &mut W {
    ws.downcast_mut::<W>()
        .expect("a workspace of another descriptor type was passed")
}
