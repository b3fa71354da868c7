//! Cell-list neighbor list: every pair (i, j, S) with |r_j + S·cell - r_i| < cutoff, where S
//! is the integer lattice translation, for periodic, partly periodic and open structures.
//!
//! Semantics follow `ase.neighborlist.neighbor_list`: a full list (both directions), periodic
//! self-images (i, i, S != 0) included, shifts only along periodic directions, pairs accepted
//! with a strict `distance < cutoff` on the distance computed from the original (unwrapped)
//! positions as `r_j - r_i + S·cell`.
//!
//! Algorithm. The periodic cell vectors are first reduced to a basis of the same lattice made
//! of short, nearly orthogonal vectors (`reduction`; ordinary cells are already reduced and
//! kept as given), so a strongly sheared cell is searched as the compact cell it is; shifts
//! found on the reduced basis are mapped back to the given cell through the integer
//! unimodular matrix relating the two. Atoms are wrapped into the reduced cell along periodic
//! directions and sorted into bins of a grid aligned with its vectors. Each atom scans the
//! bins that its sphere of radius rc can reach, bounded direction after direction by the
//! sphere itself (see `Frame` and `Grid::search`); when rc exceeds the cell, the same bin is
//! visited at several periodic images. Each atom is independent: atoms are processed in
//! parallel in fixed chunks and the chunks concatenated in order, so the output does not
//! depend on the thread count. Time and memory are O(N + number of pairs); the memory is
//! checked against what is available while the pairs are found.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::structure::{cross, dot, norm, Structure};

mod reduction;
use reduction::Reduction;

/// Largest number of periodic cell images a single atom may have to search. A cutoff many
/// times larger than a small cell needs (2 rc/h + 1) images per periodic direction (h the
/// distance between lattice planes, of the reduced cell); beyond this limit the call fails
/// instead of running for hours. 10^6 images is a cutoff of about 50 cell heights in all
/// three directions.
pub const MAX_IMAGES_PER_ATOM: f64 = 1e6;

/// Atoms per parallel work item. Fixed, so chunking never depends on the thread count.
const CHUNK: usize = 128;

/// Whether a list of `n_atoms` atoms is one work item, built on the calling thread with no
/// thread pool: the bindings then skip the round trip to a pool thread as well, which costs
/// more than a list of a few atoms.
pub fn runs_inline(n_atoms: usize) -> bool {
    n_atoms <= CHUNK
}

/// Target bin width as a fraction of the largest cutoff: small enough that the scanned volume
/// is close to the sphere's bounding box, large enough that empty bins stay cheap.
const BIN_WIDTH_OVER_CUTOFF: f64 = 0.5;

/// The pair cutoff, in Angstrom.
#[derive(Debug, Clone)]
pub enum Cutoff {
    /// One cutoff for every pair.
    Uniform(f64),
    /// Per-atom radii: i and j are neighbors when d < r_i + r_j (ASE's list-of-radii form).
    AtomRadii(Vec<f64>),
    /// Cutoff by pair of atom types: `table[t_i * n_types + t_j]`, symmetric; a zero entry
    /// means that pair is never a neighbor (ASE's dict form).
    TypePairs {
        types: Vec<usize>,
        n_types: usize,
        table: Vec<f64>,
    },
}

impl Cutoff {
    /// Checks the cutoff against the structure and returns the largest pair cutoff.
    fn validate(&self, n_atoms: usize) -> Result<f64> {
        let bad = |what: &str| Err(Error::invalid(what.to_string()));
        let max = match self {
            Cutoff::Uniform(rc) => {
                if !(rc.is_finite() && *rc > 0.0) {
                    return Err(Error::invalid(format!(
                        "cutoff must be a positive finite number of Angstrom, got {rc}"
                    )));
                }
                *rc
            }
            Cutoff::AtomRadii(radii) => {
                if radii.len() != n_atoms {
                    return Err(Error::invalid(format!(
                        "got {} cutoff radii for {} atoms",
                        radii.len(),
                        n_atoms
                    )));
                }
                if let Some(i) = radii.iter().position(|r| !(r.is_finite() && *r >= 0.0)) {
                    return Err(Error::invalid(format!(
                        "cutoff radius of atom {i} must be finite and >= 0, got {}",
                        radii[i]
                    )));
                }
                2.0 * radii.iter().cloned().fold(0.0, f64::max)
            }
            Cutoff::TypePairs {
                types,
                n_types,
                table,
            } => {
                if types.len() != n_atoms {
                    return Err(Error::invalid(format!(
                        "got {} atom types for {} atoms",
                        types.len(),
                        n_atoms
                    )));
                }
                if table.len() != n_types * n_types {
                    return bad("the pair cutoff table must be n_types x n_types");
                }
                if types.iter().any(|&t| t >= *n_types) {
                    return bad("an atom type is outside the pair cutoff table");
                }
                if table.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
                    return bad("pair cutoffs must be finite and >= 0");
                }
                for a in 0..*n_types {
                    for b in 0..a {
                        if table[a * n_types + b] != table[b * n_types + a] {
                            return bad("the pair cutoff table must be symmetric");
                        }
                    }
                }
                table.iter().cloned().fold(0.0, f64::max)
            }
        };
        Ok(max)
    }

    #[inline(always)]
    fn pair(&self, i: usize, j: usize) -> f64 {
        match self {
            Cutoff::Uniform(rc) => *rc,
            Cutoff::AtomRadii(r) => r[i] + r[j],
            Cutoff::TypePairs {
                types,
                n_types,
                table,
            } => table[types[i] * n_types + types[j]],
        }
    }
}

/// Neighbors in compressed sparse rows: the pairs of atom i are `offsets[i]..offsets[i+1]`.
/// Descriptor code walks one atom's slice at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeighborList {
    /// n_atoms + 1 offsets into the pair arrays.
    pub offsets: Vec<usize>,
    /// Neighbor index j of each pair.
    pub neighbors: Vec<usize>,
    /// Lattice translation S of each pair (zero along non-periodic directions).
    pub shifts: Vec<[i32; 3]>,
    /// Pair vector r_j + S·cell - r_i, Angstrom.
    pub vectors: Vec<[f64; 3]>,
    /// Pair distance |vector|, Angstrom.
    pub distances: Vec<f64>,
}

impl NeighborList {
    pub fn n_atoms(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn n_pairs(&self) -> usize {
        self.neighbors.len()
    }

    /// The pair indices of atom i.
    pub fn pairs_of(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }
}

/// What to build besides neighbors, vectors and distances.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Also list each atom as its own neighbor with S = 0 and distance 0 (ASE's keyword).
    pub self_interaction: bool,
    /// Fill `NeighborList::shifts`; descriptors do not need them, so they are optional.
    pub shifts: bool,
    /// Bytes per pair the caller will allocate from the list (copies, conversions): counted
    /// in the memory check, so that a list the caller cannot afford fails during the search.
    pub extra_bytes_per_pair: usize,
}

/// Builds the full neighbor list of `structure`.
///
/// Fails with `Error::OutOfMemory` when the list (and `options.extra_bytes_per_pair` per pair
/// for the caller's copies) would not fit in the memory available: checked while the pairs
/// are found, so the search stops as soon as the pairs found so far are too many.
pub fn neighbor_list(
    structure: &Structure,
    cutoff: &Cutoff,
    options: ListOptions,
) -> Result<NeighborList> {
    neighbor_list_within(
        structure,
        cutoff,
        options,
        &crate::memory::available_bytes,
        crate::memory::UNCHECKED_BELOW,
    )
}

/// `neighbor_list` with the memory available read from `available` (None: unknown, only
/// refused allocations stop the build), at most once and only when the list's peak memory
/// reaches `unchecked_below` bytes.
fn neighbor_list_within(
    structure: &Structure,
    cutoff: &Cutoff,
    options: ListOptions,
    available: &(dyn Fn() -> Option<u64> + Sync),
    unchecked_below: u128,
) -> Result<NeighborList> {
    let n_atoms = structure.len();
    let rc_max = cutoff.validate(n_atoms)?;
    if n_atoms == 0 || (rc_max == 0.0 && !options.self_interaction) {
        // radii or a pair table that are all zero: nobody is anybody's neighbor
        return Ok(NeighborList {
            offsets: vec![0; n_atoms + 1],
            ..Default::default()
        });
    }
    if n_atoms > u32::MAX as usize {
        return Err(Error::TooLarge(format!(
            "{n_atoms} atoms is more than the neighbor list supports (2^32 - 1)"
        )));
    }
    let lattice = SearchLattice::new(structure);
    let grid = Grid::new(structure, &lattice, rc_max)?;
    let budget = MemoryBudget::new(available, unchecked_below, &options);

    // pass 1: find the pairs, keeping only (j, S) per pair
    let n_chunks = n_atoms.div_ceil(CHUNK);
    let search_chunk = |c: usize| {
        let atoms = c * CHUNK..((c + 1) * CHUNK).min(n_atoms);
        let mut chunk = Chunk::new(atoms.len(), &budget);
        let mut wrap_buffer = Vec::new();
        for i in atoms {
            if budget.exceeded() {
                break;
            }
            let before = chunk.pairs.len();
            // one monomorphised search per cutoff form keeps the hot loop free of a match
            match cutoff {
                Cutoff::Uniform(rc) => grid.search(
                    structure,
                    |_, _| *rc,
                    options.self_interaction,
                    i,
                    &mut chunk,
                    &mut wrap_buffer,
                ),
                _ => grid.search(
                    structure,
                    |i, j| cutoff.pair(i, j),
                    options.self_interaction,
                    i,
                    &mut chunk,
                    &mut wrap_buffer,
                ),
            }
            let found = chunk.pairs.len() - before;
            chunk.counts.push(found);
            budget.add_pairs(found);
        }
        chunk
    };
    let chunks: Vec<Chunk> = if n_chunks == 1 {
        vec![search_chunk(0)]
    } else {
        (0..n_chunks).into_par_iter().map(search_chunk).collect()
    };
    if budget.exceeded() {
        let searched: usize = chunks.iter().map(|c| c.counts.len()).sum();
        drop(chunks);
        return Err(budget.error(rc_max, searched, n_atoms));
    }
    materialize(structure, chunks, n_atoms, options.shifts, rc_max)
}

/// Bytes per pair of pass 1's buffers (`Found`).
const SEARCH_BYTES_PER_PAIR: u64 = std::mem::size_of::<Found>() as u64;

/// Bytes per pair of the final list: neighbor index, vector, distance and optionally shift.
fn list_bytes_per_pair(shifts: bool) -> u64 {
    let shift = if shifts {
        std::mem::size_of::<[i32; 3]>()
    } else {
        0
    };
    (std::mem::size_of::<usize>() + std::mem::size_of::<[f64; 3]>() + 8 + shift) as u64
}

/// The memory a build will need, counted while pass 1 runs and checked against the memory
/// available, read once when the count first reaches `unchecked_below` (a small list never
/// reads /proc). The peak is reached either at the end of pass 2 (pass 1's buffers and the
/// final list both alive) or when the caller copies the list (the list and the copies alive,
/// pass 1's buffers freed): pairs · list + max(pass 1 bytes, pairs · extra).
struct MemoryBudget<'a> {
    source: &'a (dyn Fn() -> Option<u64> + Sync),
    unchecked_below: u128,
    /// Bytes available, once read; None inside when unknown.
    available: OnceLock<Option<u64>>,
    list_bytes_per_pair: u64,
    extra_bytes_per_pair: u64,
    /// Pairs found so far, and bytes reserved by pass 1's buffers so far.
    pairs: AtomicU64,
    reserved: AtomicU64,
    exceeded: AtomicBool,
    /// An allocation was refused although the estimate fit (the limit was not readable).
    refused: AtomicBool,
}

impl<'a> MemoryBudget<'a> {
    fn new(
        source: &'a (dyn Fn() -> Option<u64> + Sync),
        unchecked_below: u128,
        options: &ListOptions,
    ) -> Self {
        MemoryBudget {
            source,
            unchecked_below,
            available: OnceLock::new(),
            list_bytes_per_pair: list_bytes_per_pair(options.shifts),
            extra_bytes_per_pair: options.extra_bytes_per_pair as u64,
            pairs: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
            refused: AtomicBool::new(false),
        }
    }

    fn peak(&self, pairs: u64, reserved: u64) -> u128 {
        let pairs = pairs as u128;
        pairs * self.list_bytes_per_pair as u128
            + (reserved as u128).max(pairs * self.extra_bytes_per_pair as u128)
    }

    /// Whether the peak with `pairs` pairs and `reserved` bytes of pass 1 fits; marks the
    /// budget exceeded when not.
    fn check(&self, pairs: u64, reserved: u64) -> bool {
        let peak = self.peak(pairs, reserved);
        if peak < self.unchecked_below {
            return true;
        }
        let available = *self.available.get_or_init(self.source);
        let fits = available.is_none_or(|room| peak <= room as u128);
        if !fits {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        fits
    }

    fn add_pairs(&self, found: usize) {
        let pairs = self.pairs.fetch_add(found as u64, Ordering::Relaxed) + found as u64;
        self.check(pairs, self.reserved.load(Ordering::Relaxed));
    }

    fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// The error once exceeded, after `searched` of `n_atoms` atoms were searched.
    fn error(&self, rc_max: f64, searched: usize, n_atoms: usize) -> Error {
        let pairs = self.pairs.load(Ordering::Relaxed);
        let peak = self.peak(pairs, self.reserved.load(Ordering::Relaxed));
        let per_pair = peak as f64 / pairs.max(1) as f64;
        let expected = pairs as f64 * n_atoms as f64 / searched.max(1) as f64;
        let room = match self.available.get().copied().flatten() {
            Some(room) if !self.refused.load(Ordering::Relaxed) => {
                format!("only {:.2} GB of memory is available", room as f64 / 1e9)
            }
            _ => "an allocation was refused".to_string(),
        };
        Error::OutOfMemory(format!(
            "the neighbor list for a cutoff of {rc_max} Angstrom does not fit in memory: \
             {pairs} pairs found in {searched} of {n_atoms} atoms (about {expected:.2e} pairs \
             in all) already need {:.2} GB ({per_pair:.0} bytes per pair while the list is \
             built and returned), and {room}; use a smaller cutoff or fewer atoms",
            peak as f64 / 1e9
        ))
    }
}

/// A pair found by pass 1: the neighbor index and the lattice translation S.
#[derive(Debug, Clone, Copy)]
struct Found {
    j: u32,
    shift: [i32; 3],
}

/// One chunk's pairs, atoms in order. The buffer grows through the memory budget, so a list
/// too large for memory stops the search instead of aborting in an allocation.
struct Chunk<'a> {
    counts: Vec<usize>,
    pairs: Vec<Found>,
    budget: &'a MemoryBudget<'a>,
    /// A growth was refused: further pairs are dropped, and the build fails.
    full: bool,
}

impl<'a> Chunk<'a> {
    fn new(n_atoms: usize, budget: &'a MemoryBudget<'a>) -> Self {
        let mut chunk = Chunk {
            counts: Vec::with_capacity(n_atoms),
            pairs: Vec::new(),
            budget,
            full: false,
        };
        chunk.grow_to(32 * n_atoms);
        chunk
    }

    #[inline(always)]
    fn push(&mut self, j: usize, shift: [i32; 3]) {
        if self.pairs.len() == self.pairs.capacity() && !self.grow() {
            return;
        }
        self.pairs.push(Found { j: j as u32, shift });
    }

    /// Doubles the buffer, if the budget allows it and the allocator agrees.
    #[cold]
    fn grow(&mut self) -> bool {
        let capacity = self.pairs.capacity();
        self.grow_to(2 * capacity.max(1024))
    }

    fn grow_to(&mut self, capacity: usize) -> bool {
        if self.full {
            return false;
        }
        let old = self.pairs.capacity() as u64 * SEARCH_BYTES_PER_PAIR;
        let new = capacity as u64 * SEARCH_BYTES_PER_PAIR;
        let budget = self.budget;
        // while the buffer moves, the old and the new one both exist
        let fits = budget.check(
            budget.pairs.load(Ordering::Relaxed),
            budget.reserved.load(Ordering::Relaxed) + new,
        );
        let additional = capacity - self.pairs.len();
        if !fits || self.pairs.try_reserve_exact(additional).is_err() {
            if fits {
                budget.refused.store(true, Ordering::Relaxed);
                budget.exceeded.store(true, Ordering::Relaxed);
            }
            self.full = true;
            return false;
        }
        let grown = self.pairs.capacity() as u64 * SEARCH_BYTES_PER_PAIR;
        budget.reserved.fetch_add(grown - old, Ordering::Relaxed);
        true
    }
}

/// Pass 2: writes the final CSR arrays, each chunk into its own slice in parallel, computing
/// vectors and distances with the same expression the search accepted them with.
fn materialize(
    structure: &Structure,
    chunks: Vec<Chunk>,
    n_atoms: usize,
    keep_shifts: bool,
    rc_max: f64,
) -> Result<NeighborList> {
    let mut offsets = Vec::with_capacity(n_atoms + 1);
    offsets.push(0);
    for chunk in &chunks {
        for &count in &chunk.counts {
            offsets.push(offsets.last().unwrap() + count);
        }
    }
    let n_pairs = *offsets.last().unwrap();
    let lengths: Vec<usize> = chunks.iter().map(|c| c.pairs.len()).collect();
    let shift_lengths: Vec<usize> = if keep_shifts {
        lengths.clone()
    } else {
        vec![0; lengths.len()]
    };
    // Outputs are written once, in parallel, without zero-filling first: every slot of every
    // chunk's slice is written below, then the lengths are set.
    let what = format!("the neighbor list of {n_pairs} pairs (cutoff {rc_max} Angstrom)");
    crate::memory::ensure_fits(
        n_pairs as u128 * list_bytes_per_pair(keep_shifts) as u128,
        &what,
    )?;
    let mut neighbors = crate::memory::try_large_vec::<usize>(n_pairs, &what)?;
    let mut shifts =
        crate::memory::try_large_vec::<[i32; 3]>(if keep_shifts { n_pairs } else { 0 }, &what)?;
    let mut vectors = crate::memory::try_large_vec::<[f64; 3]>(n_pairs, &what)?;
    let mut distances = crate::memory::try_large_vec::<f64>(n_pairs, &what)?;
    let targets: Vec<_> = split_by(&mut neighbors.spare_capacity_mut()[..n_pairs], &lengths)
        .into_iter()
        .zip(split_by(
            &mut shifts.spare_capacity_mut()[..shift_lengths.iter().sum::<usize>()],
            &shift_lengths,
        ))
        .zip(split_by(
            &mut vectors.spare_capacity_mut()[..n_pairs],
            &lengths,
        ))
        .zip(split_by(
            &mut distances.spare_capacity_mut()[..n_pairs],
            &lengths,
        ))
        .collect();
    let positions = structure.positions();
    let cell = structure.cell();
    use std::mem::MaybeUninit;
    let write = |c: usize,
                 j_out: &mut [MaybeUninit<usize>],
                 s_out: &mut [MaybeUninit<[i32; 3]>],
                 v_out: &mut [MaybeUninit<[f64; 3]>],
                 d_out: &mut [MaybeUninit<f64>],
                 chunk: Chunk| {
        let mut pair = 0;
        for (a, &count) in chunk.counts.iter().enumerate() {
            let i = c * CHUNK + a;
            for _ in 0..count {
                let Found { j, shift } = chunk.pairs[pair];
                let j = j as usize;
                let v = pair_vector(positions[i], positions[j], shift, cell);
                j_out[pair].write(j);
                v_out[pair].write(v);
                d_out[pair].write((v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt());
                if keep_shifts {
                    s_out[pair].write(shift);
                }
                pair += 1;
            }
        }
        debug_assert_eq!(pair, j_out.len());
    };
    // one chunk (a list of a few atoms) is written here, without a round trip to the pool
    if chunks.len() == 1 {
        for (c, ((((j, s), v), d), chunk)) in targets.into_iter().zip(chunks).enumerate() {
            write(c, j, s, v, d, chunk);
        }
    } else {
        targets
            .into_par_iter()
            .zip(chunks.into_par_iter())
            .enumerate()
            .for_each(|(c, ((((j, s), v), d), chunk))| write(c, j, s, v, d, chunk));
    }
    // SAFETY: the chunks' slices tile 0..n_pairs (lengths sum to n_pairs) and the loop above
    // wrote every element of every slice, so the first n_pairs elements are initialized.
    unsafe {
        neighbors.set_len(n_pairs);
        vectors.set_len(n_pairs);
        distances.set_len(n_pairs);
        if keep_shifts {
            shifts.set_len(n_pairs);
        }
    }
    Ok(NeighborList {
        offsets,
        neighbors,
        shifts,
        vectors,
        distances,
    })
}

/// ASE's pair vector r_j - r_i + S·cell, from the unwrapped positions.
#[inline(always)]
fn pair_vector(r_i: [f64; 3], r_j: [f64; 3], shift: [i32; 3], cell: &[[f64; 3]; 3]) -> [f64; 3] {
    let (s0, s1, s2) = (shift[0] as f64, shift[1] as f64, shift[2] as f64);
    std::array::from_fn(|c| {
        (r_j[c] - r_i[c]) + (s0 * cell[0][c] + s1 * cell[1][c] + s2 * cell[2][c])
    })
}

fn split_by<'a, T>(mut rest: &'a mut [T], lengths: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(lengths.len());
    for &n in lengths {
        let (head, tail) = rest.split_at_mut(n);
        parts.push(head);
        rest = tail;
    }
    parts
}

/// The lattice the bins are aligned with: along periodic directions the reduced cell vectors
/// (see `reduction`), along open directions an orthonormal complement of them. Open
/// directions never carry a shift, so their vectors only need to make the basis invertible;
/// replacing them makes a zero, flat or skewed cell along an open direction harmless.
struct SearchLattice {
    /// Rows are the basis vectors, Angstrom.
    vectors: [[f64; 3]; 3],
    /// Row k is the reciprocal vector b_k: fractional coordinate k of r is b_k · r.
    reciprocal: [[f64; 3]; 3],
    periodic: [bool; 3],
    /// How the periodic vectors derive from the cell's, to map shifts back.
    reduction: Reduction,
}

impl SearchLattice {
    fn new(structure: &Structure) -> Self {
        let pbc = structure.pbc();
        let reduction = reduction::reduce(structure.cell(), pbc);
        let reduced = reduction.vectors;
        let periodic_dirs: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
        let open_dirs: Vec<usize> = (0..3).filter(|&k| !pbc[k]).collect();
        let mut vectors = reduced;
        let complement: Vec<[f64; 3]> = match periodic_dirs.as_slice() {
            [] => vec![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            &[a] => {
                let u = unit(reduced[a]);
                // the Cartesian axis least aligned with u gives a well-conditioned complement
                let axis = (0..3)
                    .min_by(|&x, &y| u[x].abs().total_cmp(&u[y].abs()))
                    .unwrap();
                let mut e = [0.0; 3];
                e[axis] = 1.0;
                let along = dot(e, u);
                let v1 = unit([
                    e[0] - along * u[0],
                    e[1] - along * u[1],
                    e[2] - along * u[2],
                ]);
                vec![v1, cross(u, v1)]
            }
            &[a, b] => vec![unit(cross(reduced[a], reduced[b]))],
            _ => vec![],
        };
        for (k, v) in open_dirs.into_iter().zip(complement) {
            vectors[k] = v;
        }
        let volume = dot(vectors[0], cross(vectors[1], vectors[2]));
        let reciprocal = [
            scale(cross(vectors[1], vectors[2]), 1.0 / volume),
            scale(cross(vectors[2], vectors[0]), 1.0 / volume),
            scale(cross(vectors[0], vectors[1]), 1.0 / volume),
        ];
        SearchLattice {
            vectors,
            reciprocal,
            periodic: pbc,
            reduction,
        }
    }

    fn fractional(&self, r: [f64; 3]) -> [f64; 3] {
        [
            dot(self.reciprocal[0], r),
            dot(self.reciprocal[1], r),
            dot(self.reciprocal[2], r),
        ]
    }

    /// Distance between lattice planes of each direction, 1 / |b_k|, Angstrom.
    fn plane_spacings(&self) -> [f64; 3] {
        std::array::from_fn(|k| 1.0 / norm(self.reciprocal[k]))
    }

    /// Bound on the rounding scale of lattice translations: sum over the reduced vectors of
    /// sum_l |U_kl| |cell_l|, what computing them from the cell's vectors can lose.
    fn rounding_scale(&self, cell: &[[f64; 3]; 3]) -> f64 {
        let u = &self.reduction.unimodular;
        (0..3)
            .map(|k| {
                (0..3)
                    .map(|l| u[k][l].unsigned_abs() as f64 * norm(cell[l]))
                    .sum::<f64>()
            })
            .sum()
    }
}

/// The search lattice in an orthonormal frame (e0, e1, e2) with e2 along v2 and e1 in the
/// plane of v1 and v2, where it is triangular:
///   v0 = (a00, a01, a02),  v1 = (0, a11, a12),  v2 = (0, 0, a22),
/// so a fractional displacement d has Cartesian components
///   x0 = d0 a00,  x1 = d0 a01 + d1 a11,  x2 = d0 a02 + d1 a12 + d2 a22.
/// Each component involves one more coordinate than the last, which lets the scan bound
/// d0, then d1 given d0, then d2 given both, by the sphere itself (as in Fincke & Pohst's
/// enumeration of lattice points in a sphere), whatever the skew.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// |a00|: the spacing of the lattice planes of direction 0.
    h0: f64,
    a01: f64,
    a02: f64,
    a11: f64,
    a12: f64,
    inverse_a11: f64,
    inverse_a22: f64,
}

impl Frame {
    fn new(v: &[[f64; 3]; 3]) -> Self {
        let e2 = unit(v[2]);
        let along = dot(v[1], e2);
        let e1 = unit(std::array::from_fn(|c| v[1][c] - along * e2[c]));
        let e0 = cross(e1, e2);
        let a11 = dot(v[1], e1);
        let a22 = norm(v[2]);
        Frame {
            h0: dot(v[0], e0).abs(),
            a01: dot(v[0], e1),
            a02: dot(v[0], e2),
            a11,
            a12: along,
            inverse_a11: 1.0 / a11,
            inverse_a22: 1.0 / a22,
        }
    }
}

/// The interval {a x : x in [lo, hi]}. Plain comparisons: no NaN can occur here, and
/// f64::min/max cost several instructions each in the hot loop.
#[inline(always)]
fn scaled((lo, hi): (f64, f64), a: f64) -> (f64, f64) {
    let (p, q) = (lo * a, hi * a);
    if p <= q {
        (p, q)
    } else {
        (q, p)
    }
}

/// Distance from 0 to the interval [lo, hi]: 0 when it contains 0.
#[inline(always)]
fn gap_to_zero((lo, hi): (f64, f64)) -> f64 {
    // max(lo, -hi, 0) with comparisons that compile to maxsd
    let m = if lo > -hi { lo } else { -hi };
    if m > 0.0 {
        m
    } else {
        0.0
    }
}

/// Atoms sorted into bins, with everything the per-atom search needs.
struct Grid {
    periodic: [bool; 3],
    /// Bins along each lattice direction.
    n_bins: [i64; 3],
    /// Fractional coordinate of the grid's lower edge, and bins per unit fractional coordinate.
    origin: [f64; 3],
    bins_per_unit: [f64; 3],
    bin_width: [f64; 3],
    /// Half-width of the sphere's bounding slab in fractional coordinates, with a margin.
    reach: [f64; 3],
    /// Squared distance below which a candidate is checked (loose by the margin).
    filter2: f64,
    frame: Frame,
    /// Bound on the rounding difference between distances from wrapped and from unwrapped
    /// positions, Angstrom.
    margin: f64,
    lattice: [[f64; 3]; 3],
    reduction: Reduction,
    /// Whether the search lattice differs from the cell (shifts need mapping).
    reduced: bool,
    /// Per atom: fractional coordinates (search lattice) after wrapping, and the lattice
    /// translation o_i of the cell that wrapped it (wrapped = r_i - o_i·cell).
    fractional: Vec<[f64; 3]>,
    image: Vec<[i32; 3]>,
    /// Bin b holds slots bin_start[b]..bin_start[b+1]; per slot the atom's wrapped Cartesian
    /// position, contiguous for the inner loop, and the atom with its wrapping translation
    /// (read only for candidates within the cutoff).
    bin_start: Vec<usize>,
    slot_position: Vec<[f64; 3]>,
    slot_atom: Vec<(u32, [i32; 3])>,
}

impl Grid {
    fn new(structure: &Structure, lattice: &SearchLattice, rc_max: f64) -> Result<Self> {
        let n_atoms = structure.len();
        let periodic = lattice.periodic;
        let height = lattice.plane_spacings();
        check_images(lattice, rc_max)?;

        let (fractional, image, max_image) = wrap_atoms(structure, lattice)?;

        // grid extent: the unit cell along periodic directions, the atoms' span along open ones
        let mut origin = [0.0; 3];
        let mut extent = [1.0; 3];
        for k in 0..3 {
            if !periodic[k] {
                let (lo, hi) = fractional
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                        (lo.min(s[k]), hi.max(s[k]))
                    });
                origin[k] = lo;
                extent[k] = hi - lo;
            }
        }
        let n_bins = bin_counts(extent, height, rc_max, n_atoms);
        let bins_per_unit: [f64; 3] = std::array::from_fn(|k| {
            if extent[k] > 0.0 {
                n_bins[k] as f64 / extent[k]
            } else {
                1.0
            }
        });
        // The margin absorbs rounding in the wrapped coordinates and the lattice translations,
        // which grows with the size of the coordinates, of the images and of the integer
        // coefficients of the reduced vectors; decisions inside it are made exactly.
        let position_scale = structure
            .positions()
            .iter()
            .map(|r| norm(*r))
            .fold(0.0, f64::max);
        let max_translation = (0..3)
            .filter(|&k| periodic[k])
            .map(|k| rc_max / height[k] + 2.0)
            .fold(0.0, f64::max);
        let margin = 1e-9 * (1.0 + rc_max)
            + 1e-12
                * (position_scale
                    + (max_image + max_translation) * lattice.rounding_scale(structure.cell()));
        let reach: [f64; 3] = std::array::from_fn(|k| (rc_max + margin) / height[k]);
        let filter2 = (rc_max + margin) * (rc_max + margin);
        check_shift_range(lattice, &reach, &image)?;

        let bin_of = |s: &[f64; 3]| -> usize {
            let mut c = [0i64; 3];
            for k in 0..3 {
                let x = floor_i64((s[k] - origin[k]) * bins_per_unit[k]);
                c[k] = x.clamp(0, n_bins[k] - 1);
            }
            ((c[0] * n_bins[1] + c[1]) * n_bins[2] + c[2]) as usize
        };
        // counting sort, stable in atom order
        let n_total = (n_bins[0] * n_bins[1] * n_bins[2]) as usize;
        let atom_bin: Vec<usize> = fractional.iter().map(bin_of).collect();
        let mut bin_start = vec![0usize; n_total + 1];
        for &b in &atom_bin {
            bin_start[b + 1] += 1;
        }
        for b in 0..n_total {
            bin_start[b + 1] += bin_start[b];
        }
        let mut fill = bin_start.clone();
        let mut slot_position = vec![[0.0; 3]; n_atoms];
        let mut slot_atom = vec![(0u32, [0; 3]); n_atoms];
        let cell = structure.cell();
        for (i, &b) in atom_bin.iter().enumerate() {
            let slot = fill[b];
            fill[b] += 1;
            let o = image[i];
            slot_atom[slot] = (i as u32, o);
            slot_position[slot] = wrapped(structure.positions()[i], o, cell);
        }

        Ok(Grid {
            periodic,
            n_bins,
            origin,
            bins_per_unit,
            bin_width: bins_per_unit.map(|b| 1.0 / b),
            reach,
            filter2,
            frame: Frame::new(&lattice.vectors),
            margin,
            lattice: lattice.vectors,
            reduction: lattice.reduction.clone(),
            reduced: !lattice.reduction.is_identity(),
            fractional,
            image,
            bin_start,
            slot_position,
            slot_atom,
        })
    }

    /// Appends the neighbors of atom i to `out`.
    ///
    /// The scan is provably complete: a bin is skipped only when no point of its box in
    /// fractional coordinates (d0, d1, d2 each in the bin's interval, relative to the atom)
    /// lies within rc + margin, by the triangular form of `Frame`: |x|^2 >= x0^2 + x1^2 + x2^2
    /// with each component bounded below by its minimum |.| over the box, which interval
    /// arithmetic gives exactly. Rows along direction 1 are limited to those where
    /// min |x1| < sqrt(R^2 - min x0^2), runs along direction 2 to those where
    /// min |x2| < sqrt(R^2 - min x0^2 - min x1^2). No eigenvalue or other estimate of the
    /// metric enters, so skew cannot make the bound too tight; rounding in these bounds is
    /// relative 1e-16 of R, far inside the margin. Bins along the last lattice direction are
    /// contiguous in slot order, so each run of them at one periodic image is scanned as a
    /// single slot range.
    fn search(
        &self,
        structure: &Structure,
        pair_cutoff: impl Fn(usize, usize) -> f64,
        self_interaction: bool,
        i: usize,
        out: &mut Chunk,
        wrapped_rows: &mut Vec<(i64, i64, f64)>,
    ) {
        let s = self.fractional[i];
        let mut lo = [0i64; 3];
        let mut hi = [0i64; 3];
        for k in 0..3 {
            lo[k] = self.bin_index(s, -self.reach[k], k);
            hi[k] = self.bin_index(s, self.reach[k], k);
            if !self.periodic[k] {
                lo[k] = lo[k].max(0);
                hi[k] = hi[k].min(self.n_bins[k] - 1);
            }
        }
        let [n0, n1, n2] = self.n_bins;
        let [w0, w1, _] = self.bin_width;
        // fractional displacement from the atom to the lower edge of bin 0, per direction;
        // bin c spans rel + c w .. rel + (c + 1) w, and displacement d is in bin
        // floor((d - rel) / w)
        let rel: [f64; 3] = std::array::from_fn(|k| self.origin[k] - s[k]);
        wrapped_rows.clear();
        wrapped_rows.extend(
            (lo[1]..=hi[1]).map(|c| (c.rem_euclid(n1), c.div_euclid(n1), rel[1] + c as f64 * w1)),
        );

        let positions = structure.positions();
        let cell = structure.cell();
        let r_i = positions[i];
        let o_i = self.image[i];
        let w_i = wrapped(r_i, o_i, cell);
        let l = &self.lattice;
        let f = &self.frame;
        let radius2 = self.filter2;
        // Cartesian bounds on x1 (x2) to bins along direction 1 (2)
        let to_bin1 = f.inverse_a11 * self.bins_per_unit[1];
        let to_bin2 = f.inverse_a22 * self.bins_per_unit[2];
        let (bin1_0, bin2_0) = (
            rel[1] * self.bins_per_unit[1],
            rel[2] * self.bins_per_unit[2],
        );
        for c0 in lo[0]..=hi[0] {
            let (b0, t0) = (c0.rem_euclid(n0), c0.div_euclid(n0));
            let d0_lo = rel[0] + c0 as f64 * w0;
            let d0 = (d0_lo, d0_lo + w0);
            let x0 = gap_to_zero(d0) * f.h0;
            let rest1 = radius2 - x0 * x0;
            if rest1 <= 0.0 {
                continue;
            }
            let r1 = rest1.sqrt();
            // |p + d1 a11| < r1 for some p in the interval of d0 a01: d1 in an interval
            let p = scaled(d0, f.a01);
            let q0 = scaled(d0, f.a02);
            let first1 = floor_i64((-r1 - p.1) * to_bin1 - bin1_0).max(lo[1]);
            let last1 = floor_i64((r1 - p.0) * to_bin1 - bin1_0).min(hi[1]);
            if first1 > last1 {
                continue;
            }
            let rows = &wrapped_rows[(first1 - lo[1]) as usize..=(last1 - lo[1]) as usize];
            for &(b1, t1, d1_lo) in rows {
                let d1 = (d1_lo, d1_lo + w1);
                let x1 = gap_to_zero((p.0 + d1.0 * f.a11, p.1 + d1.1 * f.a11));
                let rest2 = rest1 - x1 * x1;
                if rest2 <= 0.0 {
                    continue;
                }
                let r2 = rest2.sqrt();
                let q1 = scaled(d1, f.a12);
                let mut lo2 = floor_i64((-r2 - q0.1 - q1.1) * to_bin2 - bin2_0);
                let mut hi2 = floor_i64((r2 - q0.0 - q1.0) * to_bin2 - bin2_0);
                if !self.periodic[2] {
                    lo2 = lo2.max(0);
                    hi2 = hi2.min(n2 - 1);
                }
                let row = (b0 * n1 + b1) * n2;
                let mut c2 = lo2;
                while c2 <= hi2 {
                    let t2 = c2.div_euclid(n2);
                    let first = c2 - t2 * n2;
                    let last = (hi2 - t2 * n2).min(n2 - 1);
                    c2 += last - first + 1;
                    let slots = self.bin_start[(row + first) as usize]
                        ..self.bin_start[(row + last + 1) as usize];
                    if slots.is_empty() {
                        continue;
                    }
                    let (f0, f1, f2) = (t0 as f64, t1 as f64, t2 as f64);
                    // translation of this image minus the central atom: one add per candidate
                    let offset: [f64; 3] = std::array::from_fn(|c| {
                        f0 * l[0][c] + f1 * l[1][c] + f2 * l[2][c] - w_i[c]
                    });
                    // the same translation as the cell's integer shift, plus the atom's image
                    // (in range: checked by check_shift_range)
                    let base: [i32; 3] = if self.reduced {
                        let t = self.reduction.cell_shift([t0, t1, t2]);
                        std::array::from_fn(|c| (t[c] + o_i[c] as i64) as i32)
                    } else {
                        [t0 as i32 + o_i[0], t1 as i32 + o_i[1], t2 as i32 + o_i[2]]
                    };
                    for slot in slots {
                        let p = self.slot_position[slot];
                        let dx = p[0] + offset[0];
                        let dy = p[1] + offset[1];
                        let dz = p[2] + offset[2];
                        if dx * dx + dy * dy + dz * dz >= self.filter2 {
                            continue;
                        }
                        let (j, o_j) = self.slot_atom[slot];
                        let j = j as usize;
                        let shift = [base[0] - o_j[0], base[1] - o_j[1], base[2] - o_j[2]];
                        if j == i && shift == [0; 3] && !self_interaction {
                            continue;
                        }
                        // Clearly inside or outside by more than the rounding margin: decided.
                        // In the thin shell between: the exact test on ASE's formula.
                        let rc = pair_cutoff(i, j);
                        let d2 = dx * dx + dy * dy + dz * dz;
                        let inside =
                            if rc > self.margin && d2 < (rc - self.margin) * (rc - self.margin) {
                                true
                            } else if d2 >= (rc + self.margin) * (rc + self.margin) {
                                false
                            } else {
                                let v = pair_vector(r_i, positions[j], shift, cell);
                                (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt() < rc
                            };
                        if inside {
                            out.push(j, shift);
                        }
                    }
                }
            }
        }
    }

    /// The (unwrapped) bin of fractional coordinate k at s + d: floor, no clamping.
    #[inline(always)]
    fn bin_index(&self, s: [f64; 3], d: f64, k: usize) -> i64 {
        floor_i64((s[k] + d - self.origin[k]) * self.bins_per_unit[k])
    }
}

/// Fails when the search would visit more than MAX_IMAGES_PER_ATOM periodic images: the slab
/// +-rc around an atom spans 2 ceil(rc / h) + 1 images per periodic direction, h the spacing
/// of the (reduced) lattice's planes.
fn check_images(lattice: &SearchLattice, rc_max: f64) -> Result<()> {
    let height = lattice.plane_spacings();
    let images: f64 = (0..3)
        .filter(|&k| lattice.periodic[k])
        .map(|k| 2.0 * (rc_max / height[k]).ceil() + 1.0)
        .product();
    if images > MAX_IMAGES_PER_ATOM {
        let spacings: Vec<String> = (0..3)
            .filter(|&k| lattice.periodic[k])
            .map(|k| format!("{:.3e}", height[k]))
            .collect();
        return Err(Error::TooLarge(format!(
            "a cutoff of {rc_max} Angstrom needs about {images:.3e} periodic images of a cell \
             whose lattice planes (of its reduced cell) are [{}] Angstrom apart; the limit is \
             {MAX_IMAGES_PER_ATOM:.0e}: use a supercell or a smaller cutoff",
            spacings.join(", ")
        )));
    }
    Ok(())
}

/// Wraps every atom into the search lattice's unit cell along periodic directions. Returns the
/// fractional coordinates, the wrapping translation in the cell's basis, and the largest
/// wrapping translation in the search lattice's basis (for the rounding margin).
#[allow(clippy::type_complexity)]
fn wrap_atoms(
    structure: &Structure,
    lattice: &SearchLattice,
) -> Result<(Vec<[f64; 3]>, Vec<[i32; 3]>, f64)> {
    let n_atoms = structure.len();
    let mut fractional = Vec::with_capacity(n_atoms);
    let mut image = Vec::with_capacity(n_atoms);
    let mut max_image: f64 = 0.0;
    let too_far = |i: usize, shift: f64| {
        Error::invalid(format!(
            "atom {i} lies {shift:.3e} cell lengths outside the cell along a periodic \
             direction; wrap the positions first"
        ))
    };
    for (i, &r) in structure.positions().iter().enumerate() {
        let mut s = lattice.fractional(r);
        let mut o = [0i64; 3];
        for k in 0..3 {
            if lattice.periodic[k] {
                let shift = s[k].floor();
                if shift.abs() > i32::MAX as f64 / 2.0 {
                    return Err(too_far(i, shift));
                }
                s[k] -= shift;
                o[k] = shift as i64;
                // a tiny negative s rounds s - floor(s) up to exactly 1
                if s[k] >= 1.0 {
                    s[k] -= 1.0;
                    o[k] += 1;
                }
                max_image = max_image.max(o[k].unsigned_abs() as f64);
            }
        }
        let o = lattice.reduction.cell_shift(o);
        if let Some(&far) = o.iter().find(|x| x.unsigned_abs() > i32::MAX as u64 / 2) {
            return Err(too_far(i, far as f64));
        }
        fractional.push(s);
        image.push(o.map(|x| x as i32));
    }
    Ok((fractional, image, max_image))
}

/// The shifts S = U^T t + o_i - o_j the search produces must fit in 32 bits; only a cell
/// skewed beyond any crystal (integer coefficients of its reduced vectors near 2^31) fails.
fn check_shift_range(lattice: &SearchLattice, reach: &[f64; 3], image: &[[i32; 3]]) -> Result<()> {
    let t_max: [i64; 3] = std::array::from_fn(|k| {
        if lattice.periodic[k] {
            reach[k].ceil() as i64 + 2
        } else {
            0
        }
    });
    let max_image = image
        .iter()
        .flatten()
        .map(|o| o.unsigned_abs() as i64)
        .max()
        .unwrap_or(0);
    let bound = lattice
        .reduction
        .cell_shift_bound(t_max)
        .saturating_add(2 * max_image);
    if bound > i32::MAX as i64 {
        return Err(Error::TooLarge(format!(
            "the lattice translations of this cell would exceed 2^31 cell vectors (the cell is \
             too skewed: its reduced vectors are combinations {:?} of the cell vectors); \
             give a reduced cell",
            lattice.reduction.unimodular
        )));
    }
    Ok(())
}

/// r - o·cell: the position wrapped by the cell translation o.
#[inline(always)]
fn wrapped(r: [f64; 3], o: [i32; 3], cell: &[[f64; 3]; 3]) -> [f64; 3] {
    std::array::from_fn(|c| {
        r[c] - (o[0] as f64 * cell[0][c] + o[1] as f64 * cell[1][c] + o[2] as f64 * cell[2][c])
    })
}

/// Bins per direction: width about BIN_WIDTH_OVER_CUTOFF * rc, at least one bin, and no
/// more bins in total than a few per atom (sparse open systems would otherwise get huge
/// empty grids).
fn bin_counts(extent: [f64; 3], height: [f64; 3], rc_max: f64, n_atoms: usize) -> [i64; 3] {
    let max_bins = (4 * n_atoms + 64) as f64;
    let length: [f64; 3] = std::array::from_fn(|k| extent[k] * height[k]);
    // a zero cutoff (self-interaction only) still needs a finite bin width
    let mut width = BIN_WIDTH_OVER_CUTOFF * rc_max.max(1.0);
    loop {
        let n: [f64; 3] = std::array::from_fn(|k| (length[k] / width).floor().clamp(1.0, 1e9));
        let total = n[0] * n[1] * n[2];
        if total <= max_bins {
            return [n[0] as i64, n[1] as i64, n[2] as i64];
        }
        width *= (total / max_bins).cbrt().max(1.01);
    }
}

/// floor(x) as an integer without a libm call (x86-64's baseline has no rounding
/// instruction, and this runs several times per atom). Saturates far outside i64's range.
#[inline(always)]
fn floor_i64(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t - 1
    } else {
        t
    }
}

fn unit(v: [f64; 3]) -> [f64; 3] {
    scale(v, 1.0 / norm(v))
}

fn scale(v: [f64; 3], a: f64) -> [f64; 3] {
    [v[0] * a, v[1] * a, v[2] * a]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    const ALL: ListOptions = ListOptions {
        self_interaction: false,
        shifts: true,
        extra_bytes_per_pair: 0,
    };

    /// All pairs by brute force over an explicit range of images: the reference.
    fn brute_force(s: &Structure, rc: f64, images: i32) -> Vec<(usize, usize, [i32; 3])> {
        let pbc = s.pbc();
        let range = |k: usize| if pbc[k] { -images..=images } else { 0..=0 };
        let cell = s.cell();
        let mut pairs = vec![];
        for i in 0..s.len() {
            for j in 0..s.len() {
                for a in range(0) {
                    for b in range(1) {
                        for c in range(2) {
                            if i == j && (a, b, c) == (0, 0, 0) {
                                continue;
                            }
                            let v: [f64; 3] = std::array::from_fn(|x| {
                                s.positions()[j][x] - s.positions()[i][x]
                                    + a as f64 * cell[0][x]
                                    + b as f64 * cell[1][x]
                                    + c as f64 * cell[2][x]
                            });
                            if norm(v) < rc {
                                pairs.push((i, j, [a, b, c]));
                            }
                        }
                    }
                }
            }
        }
        pairs.sort();
        pairs
    }

    fn pairs(list: &NeighborList) -> Vec<(usize, usize, [i32; 3])> {
        let mut p: Vec<_> = (0..list.n_atoms())
            .flat_map(|i| list.pairs_of(i).map(move |k| (i, k)))
            .map(|(i, k)| (i, list.neighbors[k], list.shifts[k]))
            .collect();
        p.sort();
        p
    }

    fn random_structure(rng: &mut SmallRng, n: usize, pbc: [bool; 3], skew: f64) -> Structure {
        let cell: [[f64; 3]; 3] = std::array::from_fn(|k| {
            std::array::from_fn(|c| {
                if c == k {
                    2.0 + 3.0 * rng.random::<f64>()
                } else {
                    skew * (rng.random::<f64>() - 0.5)
                }
            })
        });
        // some atoms outside the cell
        let positions = (0..n)
            .map(|_| {
                let f: [f64; 3] = std::array::from_fn(|_| 1.6 * rng.random::<f64>() - 0.3);
                std::array::from_fn(|c| (0..3).map(|k| f[k] * cell[k][c]).sum())
            })
            .collect();
        Structure::new(positions, cell, pbc, vec![14; n]).unwrap()
    }

    #[test]
    fn matches_brute_force_for_every_pbc_and_skew() {
        let mut rng = SmallRng::seed_from_u64(7);
        for case in 0..64 {
            let pbc = [case & 1 != 0, case & 2 != 0, case & 4 != 0];
            let skew = if case % 16 < 8 { 0.0 } else { 3.0 };
            let n = 1 + case % 13;
            let s = random_structure(&mut rng, n, pbc, skew);
            let rc = 0.5 + 6.0 * rng.random::<f64>();
            let list = neighbor_list(&s, &Cutoff::Uniform(rc), ALL).unwrap();
            assert_eq!(pairs(&list), brute_force(&s, rc, 12), "case {case} rc {rc}");
            for k in 0..list.n_pairs() {
                assert!((norm(list.vectors[k]) - list.distances[k]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn offsets_are_csr() {
        let mut rng = SmallRng::seed_from_u64(3);
        let s = random_structure(&mut rng, 300, [true; 3], 1.0);
        let list = neighbor_list(&s, &Cutoff::Uniform(3.0), ALL).unwrap();
        assert_eq!(list.offsets.len(), 301);
        assert_eq!(*list.offsets.last().unwrap(), list.n_pairs());
        assert!(list.offsets.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn deterministic_across_thread_counts() {
        let mut rng = SmallRng::seed_from_u64(11);
        let s = random_structure(&mut rng, 2000, [true, true, false], 2.0);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| neighbor_list(&s, &Cutoff::Uniform(4.0), ALL).unwrap())
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn self_interaction_adds_each_atom_once() {
        let mut rng = SmallRng::seed_from_u64(5);
        let s = random_structure(&mut rng, 10, [false; 3], 0.0);
        let without = neighbor_list(&s, &Cutoff::Uniform(2.0), ALL).unwrap();
        let with = neighbor_list(
            &s,
            &Cutoff::Uniform(2.0),
            ListOptions {
                self_interaction: true,
                ..ALL
            },
        )
        .unwrap();
        assert_eq!(with.n_pairs(), without.n_pairs() + 10);
    }

    #[test]
    fn per_type_cutoffs() {
        let mut rng = SmallRng::seed_from_u64(9);
        let s = random_structure(&mut rng, 40, [true; 3], 0.5);
        let types: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let table = vec![3.0, 2.0, 2.0, 0.0];
        let cutoff = Cutoff::TypePairs {
            types: types.clone(),
            n_types: 2,
            table: table.clone(),
        };
        let list = neighbor_list(&s, &cutoff, ALL).unwrap();
        let all = neighbor_list(&s, &Cutoff::Uniform(3.0), ALL).unwrap();
        let expected: Vec<_> = pairs(&all)
            .into_iter()
            .filter(|&(i, j, sh)| {
                let k = all
                    .pairs_of(i)
                    .find(|&k| all.neighbors[k] == j && all.shifts[k] == sh)
                    .unwrap();
                all.distances[k] < table[types[i] * 2 + types[j]]
            })
            .collect();
        assert_eq!(pairs(&list), expected);
    }

    #[test]
    fn bad_cutoffs_and_absurd_images_are_errors() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = random_structure(&mut rng, 4, [true; 3], 0.0);
        for rc in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                neighbor_list(&s, &Cutoff::Uniform(rc), ALL),
                Err(Error::InvalidInput(_))
            ));
        }
        assert!(matches!(
            neighbor_list(&s, &Cutoff::Uniform(1e4), ALL),
            Err(Error::TooLarge(_))
        ));
        assert!(neighbor_list(&s, &Cutoff::AtomRadii(vec![1.0; 3]), ALL).is_err());
    }

    /// The same atoms in the cell sheared by integer factors (the same lattice): the pairs
    /// must be those of the unsheared cell, with S mapped to the sheared basis.
    fn assert_shear_invariant(s: &Structure, shear: [[i64; 3]; 3], rc: f64) {
        let cell = s.cell();
        let sheared: [[f64; 3]; 3] = std::array::from_fn(|k| {
            std::array::from_fn(|c| (0..3).map(|l| shear[k][l] as f64 * cell[l][c]).sum())
        });
        let t = Structure::new(
            s.positions().to_vec(),
            sheared,
            s.pbc(),
            s.numbers().to_vec(),
        )
        .unwrap();
        let reference = neighbor_list(s, &Cutoff::Uniform(rc), ALL).unwrap();
        let list = neighbor_list(&t, &Cutoff::Uniform(rc), ALL).unwrap();
        // S'·sheared = S·cell with sheared = M·cell: S = M^T S', i.e. S' = M^-T S; compare
        // by mapping the sheared list's shifts forward
        let mapped: Vec<_> = pairs(&list)
            .into_iter()
            .map(|(i, j, sh)| {
                let back: [i32; 3] = std::array::from_fn(|l| {
                    (0..3).map(|k| sh[k] as i64 * shear[k][l]).sum::<i64>() as i32
                });
                (i, j, back)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(mapped, pairs(&reference), "shear {shear:?}");
        assert_eq!(list.n_pairs(), reference.n_pairs());
    }

    #[test]
    fn sheared_cells_have_the_pairs_of_the_unsheared_cell() {
        let mut rng = SmallRng::seed_from_u64(17);
        let shears = [
            [[1, 0, 0], [1000, 1, 0], [0, 0, 1]],
            [[1, 0, 0], [24, 1, 0], [0, 0, 1]],
            [[1, -300, 0], [0, 1, 0], [0, 700, 1]],
            [[1, 0, 0], [-40, 1, 0], [1600, -40, 1]],
        ];
        for (case, shear) in shears.into_iter().enumerate() {
            for pbc in [[true; 3], [true, true, false], [true, false, true]] {
                let s = random_structure(&mut rng, 1 + case * 9, pbc, 1.0);
                for rc in [1.5, 4.0, 7.5] {
                    // open directions carry no shift: shear only periodic ones among themselves
                    let mut m = shear;
                    for k in 0..3 {
                        for l in 0..3 {
                            if k != l && !(pbc[k] && pbc[l]) {
                                m[k][l] = 0;
                            }
                        }
                    }
                    assert_shear_invariant(&s, m, rc);
                }
            }
        }
    }

    #[test]
    fn a_3000_fold_shear_of_one_atom_finds_the_six_cube_neighbors() {
        let cell = [[3.0, 0.0, 0.0], [3000.0, 3.0, 0.0], [0.0, 0.0, 3.0]];
        let s = Structure::new(vec![[0.0; 3]], cell, [true; 3], vec![29]).unwrap();
        let list = neighbor_list(&s, &Cutoff::Uniform(4.0), ALL).unwrap();
        assert_eq!(list.n_pairs(), 6);
        assert!(list.distances.iter().all(|d| (d - 3.0).abs() < 1e-9));
    }

    #[test]
    fn a_list_larger_than_the_memory_available_is_an_error() {
        let mut rng = SmallRng::seed_from_u64(2);
        let s = random_structure(&mut rng, 400, [true; 3], 0.0);
        let cutoff = Cutoff::Uniform(6.0);
        let full = neighbor_list_within(&s, &cutoff, ALL, &|| None, 0).unwrap();
        let bytes = full.n_pairs() as u64 * list_bytes_per_pair(true);
        let small = neighbor_list_within(&s, &cutoff, ALL, &|| Some(bytes / 2), 0);
        match small {
            Err(Error::OutOfMemory(m)) => assert!(m.contains("cutoff of 6 Angstrom"), "{m}"),
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
        let roomy = neighbor_list_within(&s, &cutoff, ALL, &|| Some(4 * bytes), 0).unwrap();
        assert_eq!(roomy, full);
    }

    #[test]
    fn the_memory_available_is_read_once_and_only_for_a_large_list() {
        let mut rng = SmallRng::seed_from_u64(3);
        let s = random_structure(&mut rng, 400, [true; 3], 0.0);
        let cutoff = Cutoff::Uniform(6.0);
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let counted = || {
            reads.fetch_add(1, Ordering::Relaxed);
            Some(u64::MAX)
        };
        let full = neighbor_list_within(&s, &cutoff, ALL, &counted, u128::MAX).unwrap();
        assert_eq!(
            reads.load(Ordering::Relaxed),
            0,
            "a small list read the memory available"
        );
        // a threshold this list passes: the memory is read exactly once, whatever the threads
        let large = neighbor_list_within(&s, &cutoff, ALL, &counted, 1 << 10).unwrap();
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        assert_eq!(large, full);
    }

    #[test]
    fn a_small_list_is_built_on_the_calling_thread_without_reading_proc() {
        let mut rng = SmallRng::seed_from_u64(4);
        let s = random_structure(&mut rng, 8, [true; 3], 0.0);
        assert!(runs_inline(s.len()));
        let before = crate::memory::READS.with(|r| r.get());
        let list = neighbor_list(&s, &Cutoff::Uniform(5.0), ALL).unwrap();
        assert!(list.n_pairs() > 0);
        // the count is per thread, so it holds every read only if the search ran here
        assert_eq!(
            crate::memory::READS.with(|r| r.get()),
            before,
            "/proc was read"
        );
        let here = std::thread::current().id();
        let searched_on = std::sync::Mutex::new(None);
        let record = || {
            *searched_on.lock().unwrap() = Some(std::thread::current().id());
            None
        };
        let again = neighbor_list_within(&s, &Cutoff::Uniform(5.0), ALL, &record, 0).unwrap();
        assert_eq!(
            *searched_on.lock().unwrap(),
            Some(here),
            "searched on another thread"
        );
        assert_eq!(again, list);
    }

    #[test]
    fn empty_structure() {
        let s = Structure::new(vec![], [[0.0; 3]; 3], [false; 3], vec![]).unwrap();
        let list = neighbor_list(&s, &Cutoff::Uniform(3.0), ALL).unwrap();
        assert_eq!(list.offsets, vec![0]);
    }
}
