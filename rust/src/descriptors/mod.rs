//! Descriptors of atomic environments, one module each. Each takes a validated `Structure`,
//! builds its own neighbor list and works per central atom over that atom's neighbor slice.
//!
//! Shared here: the neighbor list every descriptor (and the GAP pair kernel) uses, which
//! refuses coincident atoms, and the memory guards of their output buffers.

pub mod bispectrum;
pub mod soap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbors::{neighbor_list, Cutoff, ListOptions, NeighborList};
use crate::structure::Structure;

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

/// Checks the neighbors of `structure` for coincident atoms: every pair (i, j, S) at a
/// distance below `COINCIDENT_DISTANCE`, including j's periodic image j + S·cell, is an
/// error naming the first such pair (in list order, so the same whatever the thread count).
/// O(pairs); the list keeps such pairs (ase's semantics), the descriptors refuse them.
pub(crate) fn descriptor_neighbors(structure: &Structure, cutoff: &Cutoff) -> Result<NeighborList> {
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
