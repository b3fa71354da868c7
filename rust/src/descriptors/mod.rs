//! Descriptors of atomic environments, one module each, behind one trait, `Descriptor`.
//!
//! A descriptor describes one central atom at a time from that atom's slice of a neighbor
//! list that the caller builds (`driver`): one list per structure, at the largest cutoff of
//! every term of a model, handed to each of them; a descriptor reads only the pairs within
//! its own cutoffs. The per-atom methods are the whole contract: values, gradients (rows of
//! dX_i/dr_j and the per-atom virial) and, optionally, a faster adjoint. Everything per
//! structure (parallel loops, buffers, memory checks, streaming, the forward-mode product)
//! is written once in `driver` over the trait.
//!
//! Shared here as well: the check for coincident atoms and the memory guards of the output
//! buffers.

pub mod ace;
pub mod acsf;
pub mod bispectrum;
#[cfg(test)]
mod contract_tests;
pub mod driver;
pub mod soap;

use std::any::Any;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbors::{neighbor_list, Cutoff, ListOptions, NeighborList};
use crate::structure::Structure;

pub use driver::DescriptorExt;

/// Voigt order (xx, yy, zz, yz, xz, xy) as (gradient component, pair-vector component).
pub const VOIGT: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)];

/// Per-atom descriptors with their derivatives, sparse in neighbors.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// (n_atoms, n_features)
    pub descriptors: Vec<f64>,
    /// Per gradient row: the central atom i and the atom j it is differentiated by. The rows
    /// of atom i are the distinct j within its cutoffs and i itself, sorted by j; periodic
    /// images of one atom are summed into its row.
    pub centers: Vec<usize>,
    pub atoms: Vec<usize>,
    /// dX_i/dr_j, (n_rows, 3, n_features), 1/Angstrom times the units of X.
    pub values: Vec<f64>,
    /// Per-atom virial of X_i, (n_atoms, 6, n_features) in Voigt order:
    /// W_i[ab] = -sum_j (dX_i/dr_ij)_a (r_ij)_b (LAMMPS `compute snav/atom` summed over atoms).
    pub virial: Vec<f64>,
}

/// What a structure-level call needs per atom, for scratch-memory estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Values,
    Gradients,
    Backprop,
}

/// One structure as a descriptor sees it: the neighbor list (possibly built at a larger
/// cutoff than the descriptor's) and each atom's species index (its position in
/// `Descriptor::species`).
pub struct Env<'a> {
    pub list: &'a NeighborList,
    pub types: &'a [usize],
}

/// A descriptor of atomic environments. Object safe: models hold `Arc<dyn Descriptor>`.
///
/// Implementing one: parameters (one serde struct, registered in `from_json`), `species`,
/// the pair cutoffs, `n_features`, a per-thread workspace, `atom_values` and
/// `atom_gradients`. `atom_backprop` has a default through `atom_gradients`; override it
/// when an adjoint avoids forming dX/dr (the bispectrum's Y, SOAP's density adjoint).
pub trait Descriptor: Send + Sync {
    /// The registry name, as in model files ("bispectrum", "soap").
    fn kind(&self) -> &'static str;
    /// Atomic numbers, in the order of the species indices of `Env::types`.
    fn species(&self) -> &[u32];
    /// Features per atom.
    fn n_features(&self) -> usize;
    /// Cutoff between species indices a and b, Angstrom: pairs at r >= it are not
    /// neighbors. 0 for none.
    fn pair_cutoff(&self, a: usize, b: usize) -> f64;
    /// "the <descriptor> {what} of n atoms (<the sizes that matter>)" (`job_name`), for
    /// memory errors; `what` is "" for the values, or "gradients", "forces", ...
    fn describe(&self, what: &str, n_atoms: usize) -> String;
    /// Bytes of one thread's scratch for atoms of up to `max_neighbors` neighbors.
    fn scratch_bytes(&self, max_neighbors: usize, need: Need) -> u128;
    /// A fresh per-thread workspace, reused from atom to atom.
    fn workspace(&self) -> Box<dyn Any + Send>;
    /// X_i into `out` (n_features).
    fn atom_values(&self, env: &Env, i: usize, ws: &mut dyn Any, out: &mut [f64]);
    /// X_i into `values`, dX_i/dr_j into `gradients` ((rows.len(), 3, n_features), zeroed,
    /// rows as `driver::atom_rows` gives them) and W_i into `virial` ((6, n_features),
    /// zeroed).
    #[allow(clippy::too_many_arguments)]
    fn atom_gradients(
        &self,
        env: &Env,
        i: usize,
        ws: &mut dyn Any,
        rows: &[usize],
        values: &mut [f64],
        gradients: &mut [f64],
        virial: &mut [f64],
    );
    /// The adjoint for one atom's energy E_i(X_i): X_i into `values`, then `slope(X_i, de)`
    /// writes dE_i/dX_i into `de` (n_features, zeroed), and the contributions -dE_i/dr_j
    /// are appended to `forces` as (j, force) in an order that depends only on the
    /// structure, and -sum_j (dE_i/dr_ij)_a (r_ij)_b added to `virial`.
    #[allow(clippy::too_many_arguments)]
    fn atom_backprop(
        &self,
        env: &Env,
        i: usize,
        ws: &mut dyn Any,
        values: &mut [f64],
        slope: &mut dyn FnMut(&[f64], &mut [f64]),
        forces: &mut Vec<(usize, [f64; 3])>,
        virial: &mut [f64; 6],
    ) {
        let nf = self.n_features();
        let mut rows = Vec::new();
        driver::atom_rows(self, env, i, &mut rows);
        let mut g = vec![0.0; rows.len() * 3 * nf];
        let mut w = vec![0.0; 6 * nf];
        self.atom_gradients(env, i, ws, &rows, values, &mut g, &mut w);
        let mut de = vec![0.0; nf];
        slope(values, &mut de);
        for (r, &j) in rows.iter().enumerate() {
            let f = std::array::from_fn(|a| {
                -crate::linalg::dot(&g[(3 * r + a) * nf..(3 * r + a + 1) * nf], &de)
            });
            forces.push((j, f));
        }
        for (v, wv) in virial.iter_mut().enumerate() {
            *wv += crate::linalg::dot(&w[v * nf..(v + 1) * nf], &de);
        }
    }
    /// For a dot-product kernel: the features it needs and their weights, when dot products
    /// of two vectors need only some of them (SOAP stores each species pair once; see
    /// `PowerSpectrum::symmetric_columns`). None: every feature, weight 1.
    fn dot_product_columns(&self) -> Option<(Vec<usize>, Vec<f64>)> {
        None
    }
}

/// "the {name}" or "the {name} {what}", for the messages of memory errors.
pub(crate) fn job_name(name: &str, what: &str) -> String {
    if what.is_empty() {
        format!("the {name}")
    } else {
        format!("the {name} {what}")
    }
}

/// The descriptor of kind `kind` from its parameters as JSON (the serde struct of that
/// descriptor; unknown fields are an error). The one list of descriptors of the core.
pub fn from_json(kind: &str, json: &str) -> Result<std::sync::Arc<dyn Descriptor>> {
    fn parse<T: serde::de::DeserializeOwned>(kind: &str, json: &str) -> Result<T> {
        serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("{kind} parameters: {e}")))
    }
    Ok(match kind {
        "ace" => std::sync::Arc::new(ace::Ace::new(parse(kind, json)?)?),
        "acsf" => std::sync::Arc::new(acsf::Acsf::new(parse(kind, json)?)?),
        "bispectrum" => std::sync::Arc::new(bispectrum::Bispectrum::new(parse(kind, json)?)?),
        "soap" => std::sync::Arc::new(soap::Soap::new(parse(kind, json)?)?),
        _ => {
            return Err(Error::invalid(format!(
                "unknown descriptor kind {kind:?} (known: ace, acsf, bispectrum, soap)"
            )))
        }
    })
}

/// The largest atomic number: species lists hold distinct elements, so at most this many.
pub const MAX_ATOMIC_NUMBER: u32 = 118;

/// Checks a descriptor's species: atomic numbers of elements (so at most 118 of them, which
/// bounds every table sized by the number of species), each named once.
pub(crate) fn check_species(species: &[u32]) -> Result<()> {
    if let Some(z) = species
        .iter()
        .find(|z| !(1..=MAX_ATOMIC_NUMBER).contains(z))
    {
        return Err(Error::invalid(format!(
            "species: atomic number {z} is not an element (1 to {MAX_ATOMIC_NUMBER})"
        )));
    }
    for (k, z) in species.iter().enumerate() {
        if species[..k].contains(z) {
            return Err(Error::invalid(format!(
                "species: atomic number {z} is given twice"
            )));
        }
    }
    Ok(())
}

/// Atoms closer than this (Angstrom) are coincident. Every descriptor is singular there (the
/// direction of r_ij is undefined, and the bispectrum's map to the 3-sphere divides by r), so
/// such a structure is an error rather than a pair silently left out.
pub const COINCIDENT_DISTANCE: f64 = 1e-10;

/// Splits `buf` into one slice per atom: atom i gets rows offsets[i]..offsets[i+1] of `width`.
pub(crate) fn split_by_offsets<'a, T>(
    mut buf: &'a mut [T],
    offsets: &[usize],
    width: usize,
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = buf.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        buf = tail;
    }
    out
}

/// Neighbor lists built for descriptors and models so far, in this process: what a test
/// reads to check that a model of several terms builds one list per structure.
static LISTS_BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn lists_built() -> usize {
    LISTS_BUILT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Checks the neighbors of `structure` for coincident atoms: every pair (i, j, S) at a
/// distance below `COINCIDENT_DISTANCE`, including j's periodic image j + S·cell, is an
/// error naming the first such pair (in list order, so the same whatever the thread count).
/// O(pairs); the list keeps such pairs (ase's semantics), the descriptors refuse them.
pub(crate) fn descriptor_neighbors(structure: &Structure, cutoff: &Cutoff) -> Result<NeighborList> {
    LISTS_BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let list = neighbor_list(structure, cutoff, ListOptions::default())?;
    let coincident = list
        .distances
        .par_iter()
        .position_first(|&d| d < COINCIDENT_DISTANCE);
    match coincident {
        None => Ok(list),
        Some(pair) => Err(coincident_atoms(structure, cutoff, &list, pair)),
    }
}

/// The error for coincident pair `pair` of `list`. The shift S is only known to a list built
/// with shifts, which descriptors do not need: on this error path alone the list is rebuilt
/// with them (the pair order does not depend on that option).
fn coincident_atoms(
    structure: &Structure,
    cutoff: &Cutoff,
    list: &NeighborList,
    pair: usize,
) -> Error {
    let i = list.offsets.partition_point(|&o| o <= pair) - 1;
    let j = list.neighbors[pair];
    let distance = list.distances[pair];
    let options = ListOptions {
        shifts: true,
        ..ListOptions::default()
    };
    let shift = neighbor_list(structure, cutoff, options)
        .ok()
        .filter(|l| l.neighbors.get(pair) == Some(&j))
        .map(|l| l.shifts[pair]);
    let image = match shift {
        Some(s) if s != [0, 0, 0] => format!(
            " (atom {j} shifted by the lattice translation S = [{}, {}, {}], across the periodic boundary)",
            s[0], s[1], s[2]
        ),
        _ => String::new(),
    };
    Error::invalid(format!(
        "atoms {i} and {j}{image} are at the same position (distance {distance:.3e} Angstrom, \
         below {COINCIDENT_DISTANCE:e}): descriptors are undefined for coincident atoms"
    ))
}

/// Fails with `Error::OutOfMemory` naming `what` when `bytes` would not fit in the available
/// memory; small estimates pass unchecked (see `crate::memory::UNCHECKED_BELOW`).
pub(crate) fn ensure_fits(bytes: u128, what: impl FnOnce() -> String) -> Result<()> {
    if bytes < crate::memory::UNCHECKED_BELOW {
        return Ok(());
    }
    crate::memory::ensure_fits(bytes, &what())
}

/// `ensure_fits` for work that makes `output` bytes of results and holds `per_thread` bytes
/// of scratch on each thread of the pool: checked before any of it is allocated.
pub(crate) fn ensure_work_fits(
    output: u128,
    per_thread: u128,
    what: impl FnOnce() -> String,
) -> Result<()> {
    let threads = rayon::current_num_threads() as u128;
    ensure_fits(
        output.saturating_add(threads.saturating_mul(per_thread)),
        what,
    )
}

/// Bytes of `count` values of type T, without overflow.
pub(crate) fn bytes_of<T>(count: u128) -> u128 {
    count.saturating_mul(std::mem::size_of::<T>() as u128)
}

/// A zero-filled buffer of `n` floats with the huge-page hint, checked: too large for the
/// memory available, or refused by the allocator, is `Error::OutOfMemory` naming `what`.
pub(crate) fn zeros_checked(n: usize, what: impl FnOnce() -> String) -> Result<Vec<f64>> {
    let mut v = if bytes_of::<f64>(n as u128) < crate::memory::UNCHECKED_BELOW {
        crate::memory::large_vec(n)
    } else {
        crate::memory::try_large_vec(n, &what())?
    };
    v.resize(n, 0.0);
    Ok(v)
}

/// Values that are valid when all their bytes are zero.
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid value.
pub(crate) unsafe trait ZeroBits: Copy {}
// SAFETY: all-zero bits are 0.0 and 0.
unsafe impl ZeroBits for f64 {}
unsafe impl ZeroBits for usize {}

/// `vec![0; n]` made fallible: zeroed memory from the allocator (fresh pages are zero without
/// a memset, so they are first touched, and cleared, by whichever thread writes them), and
/// `Error::OutOfMemory` naming `what` instead of an abort when it does not fit.
pub(crate) fn calloc_checked<T: ZeroBits>(
    n: usize,
    what: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let bytes = bytes_of::<T>(n as u128);
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let what_text = what();
    ensure_fits(bytes, || what_text.clone())?;
    let too_large = || {
        Error::OutOfMemory(format!(
            "{what_text}: could not allocate {:.2} GB",
            bytes as f64 / 1e9
        ))
    };
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| too_large())?;
    // SAFETY: the layout has a non-zero size (checked above). The pointer, if not null, is an
    // allocation of the global allocator with the layout of n T, all bytes zero, which is a
    // valid T (ZeroBits); Vec<T> frees it with that same layout.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(too_large());
        }
        Ok(Vec::from_raw_parts(ptr, n, n))
    }
}

/// The largest number of neighbors of any atom of `list`.
pub(crate) fn max_neighbors(list: &NeighborList) -> usize {
    list.offsets
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_zeroed_buffer_is_an_error_not_an_abort() {
        match calloc_checked::<f64>(1usize << 58, || "a test buffer".into()) {
            Err(Error::OutOfMemory(m)) => assert!(m.contains("a test buffer"), "{m}"),
            other => panic!("expected OutOfMemory, got {:?}", other.map(|v| v.len())),
        }
        let v = calloc_checked::<usize>(1000, || "small".into()).unwrap();
        assert!(v.len() == 1000 && v.iter().all(|&x| x == 0));
    }

    fn dimer(positions: [[f64; 3]; 2], cell: f64, pbc: bool) -> Structure {
        let cell = [[cell, 0.0, 0.0], [0.0, cell, 0.0], [0.0, 0.0, cell]];
        Structure::new(positions.to_vec(), cell, [pbc; 3], vec![14, 14]).unwrap()
    }

    #[test]
    fn coincident_atoms_are_named_with_their_shift() {
        let cutoff = Cutoff::Uniform(3.0);
        let open = dimer([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], 10.0, false);
        let m = descriptor_neighbors(&open, &cutoff)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("atoms 0 and 1 ") && !m.contains("shifted"),
            "{m}"
        );
        // atom 1 at x = 10 is atom 0's image one cell along x: S = [-1, 0, 0] from 0 to 1
        let periodic = dimer([[0.0, 1.0, 1.0], [10.0, 1.0, 1.0]], 10.0, true);
        let m = descriptor_neighbors(&periodic, &cutoff)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("atoms 0 and 1 (atom 1 shifted by the lattice translation S = [-1, 0, 0]"),
            "{m}"
        );
        let apart = dimer([[0.0, 1.0, 1.0], [1e-9, 1.0, 1.0]], 10.0, true);
        assert!(descriptor_neighbors(&apart, &cutoff).is_ok());
    }
}
