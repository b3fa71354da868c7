//! Cell-list neighbor list: every pair (i, j, S) with |r_j + S·cell - r_i| < cutoff, where S
//! is the integer lattice translation, for periodic, partly periodic and open structures.
//!
//! Semantics follow `ase.neighborlist.neighbor_list`: a full list (both directions), periodic
//! self-images (i, i, S != 0) included, shifts only along periodic directions, pairs accepted
//! with a strict `distance < cutoff` on the distance computed from the original (unwrapped)
//! positions as `r_j - r_i + S·cell`.
//!
//! Algorithm. Atoms are wrapped into the cell along periodic directions and sorted into bins
//! of a grid aligned with the lattice vectors. A sphere of radius rc spans +-rc·|b_k| in the
//! fractional coordinate k (b_k the reciprocal vector, 1/|b_k| the distance between lattice
//! planes), so each atom scans only the bins its sphere's bounding slab touches. That is
//! correct for any skew and, when rc exceeds the cell, visits the same bin at several
//! periodic images. Each atom is independent: atoms are processed in parallel in fixed chunks
//! and the chunks concatenated in order, so the output does not depend on the thread count.
//! Time and memory are O(N + number of pairs).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::structure::{cross, dot, norm, Structure};

/// Largest number of periodic cell images a single atom may have to search. A cutoff many
/// times larger than a small cell needs (2 rc/h + 1) images per periodic direction (h the
/// distance between lattice planes); beyond this limit the call fails instead of running for
/// hours. 10^6 images is a cutoff of about 50 cell heights in all three directions.
pub const MAX_IMAGES_PER_ATOM: f64 = 1e6;

/// Largest number of pairs a list may hold (about 48 GB of output); beyond it the call fails
/// before exhausting memory.
pub const MAX_PAIRS: usize = 1_000_000_000;

/// Atoms per parallel work item. Fixed, so chunking never depends on the thread count.
const CHUNK: usize = 128;

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
}

/// Builds the full neighbor list of `structure`.
pub fn neighbor_list(
    structure: &Structure,
    cutoff: &Cutoff,
    options: ListOptions,
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

    // pass 1: find the pairs, keeping only (j, S) per pair
    let n_chunks = n_atoms.div_ceil(CHUNK);
    let total = AtomicUsize::new(0);
    let overflow = AtomicBool::new(false);
    let chunks: Vec<Chunk> = (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let atoms = c * CHUNK..((c + 1) * CHUNK).min(n_atoms);
            let mut chunk = Chunk::with_capacity(atoms.len());
            let mut wrap_buffer = Vec::new();
            for i in atoms {
                if overflow.load(Ordering::Relaxed) {
                    break;
                }
                let before = chunk.neighbors.len();
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
                let found = chunk.neighbors.len() - before;
                chunk.counts.push(found);
                if total.fetch_add(found, Ordering::Relaxed) + found > MAX_PAIRS {
                    overflow.store(true, Ordering::Relaxed);
                }
            }
            chunk
        })
        .collect();
    if overflow.load(Ordering::Relaxed) {
        return Err(Error::TooLarge(format!(
            "the neighbor list would hold more than {MAX_PAIRS} pairs: \
             the cutoff of {rc_max} Angstrom is too large for this structure"
        )));
    }
    Ok(materialize(structure, chunks, n_atoms, options.shifts))
}

/// One chunk's pairs, atoms in order, as neighbor index and lattice translation.
struct Chunk {
    counts: Vec<usize>,
    neighbors: Vec<u32>,
    shifts: Vec<[i32; 3]>,
}

impl Chunk {
    fn with_capacity(n_atoms: usize) -> Self {
        let pairs = 32 * n_atoms;
        Chunk {
            counts: Vec::with_capacity(n_atoms),
            neighbors: Vec::with_capacity(pairs),
            shifts: Vec::with_capacity(pairs),
        }
    }
}

/// Pass 2: writes the final CSR arrays, each chunk into its own slice in parallel, computing
/// vectors and distances with the same expression the search accepted them with.
fn materialize(
    structure: &Structure,
    chunks: Vec<Chunk>,
    n_atoms: usize,
    keep_shifts: bool,
) -> NeighborList {
    let mut offsets = Vec::with_capacity(n_atoms + 1);
    offsets.push(0);
    for chunk in &chunks {
        for &count in &chunk.counts {
            offsets.push(offsets.last().unwrap() + count);
        }
    }
    let n_pairs = *offsets.last().unwrap();
    let lengths: Vec<usize> = chunks.iter().map(|c| c.neighbors.len()).collect();
    let shift_lengths: Vec<usize> = if keep_shifts {
        lengths.clone()
    } else {
        vec![0; lengths.len()]
    };
    // Outputs are written once, in parallel, without zero-filling first: every slot of every
    // chunk's slice is written below, then the lengths are set.
    let mut neighbors = crate::memory::large_vec::<usize>(n_pairs);
    let mut shifts = crate::memory::large_vec::<[i32; 3]>(if keep_shifts { n_pairs } else { 0 });
    let mut vectors = crate::memory::large_vec::<[f64; 3]>(n_pairs);
    let mut distances = crate::memory::large_vec::<f64>(n_pairs);
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
    targets
        .into_par_iter()
        .zip(chunks.into_par_iter())
        .enumerate()
        .for_each(|(c, ((((j_out, s_out), v_out), d_out), chunk))| {
            let mut pair = 0;
            for (a, &count) in chunk.counts.iter().enumerate() {
                let i = c * CHUNK + a;
                for _ in 0..count {
                    let j = chunk.neighbors[pair] as usize;
                    let shift = chunk.shifts[pair];
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
        });
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
    NeighborList {
        offsets,
        neighbors,
        shifts,
        vectors,
        distances,
    }
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

/// The lattice the bins are aligned with: the cell vectors along periodic directions, and
/// along open directions an orthonormal complement of them. Open directions never carry a
/// shift, so their vectors only need to make the basis invertible; replacing them makes a
/// zero, flat or skewed cell along an open direction harmless.
struct SearchLattice {
    /// Rows are the basis vectors, Angstrom.
    vectors: [[f64; 3]; 3],
    /// Row k is the reciprocal vector b_k: fractional coordinate k of r is b_k · r.
    reciprocal: [[f64; 3]; 3],
    periodic: [bool; 3],
}

impl SearchLattice {
    fn new(structure: &Structure) -> Self {
        let cell = structure.cell();
        let pbc = structure.pbc();
        let periodic_dirs: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
        let open_dirs: Vec<usize> = (0..3).filter(|&k| !pbc[k]).collect();
        let mut vectors = *cell;
        let complement: Vec<[f64; 3]> = match periodic_dirs.as_slice() {
            [] => vec![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            &[a] => {
                let u = unit(cell[a]);
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
            &[a, b] => vec![unit(cross(cell[a], cell[b]))],
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
        }
    }

    fn fractional(&self, r: [f64; 3]) -> [f64; 3] {
        [
            dot(self.reciprocal[0], r),
            dot(self.reciprocal[1], r),
            dot(self.reciprocal[2], r),
        ]
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
    /// 1 / lambda_min of the search lattice's Gram matrix, slightly enlarged for rounding.
    inverse_min_metric: f64,
    /// Bound on the rounding difference between distances from wrapped and from unwrapped
    /// positions, Angstrom.
    margin: f64,
    lattice: [[f64; 3]; 3],
    /// Per atom: fractional coordinates after wrapping, and the lattice translation o_i that
    /// wrapped it (wrapped = r_i - o_i·cell).
    fractional: Vec<[f64; 3]>,
    image: Vec<[i32; 3]>,
    /// Bin b holds slots bin_start[b]..bin_start[b+1]; per slot the atom and its wrapped
    /// Cartesian position, contiguous for the inner loop.
    bin_start: Vec<usize>,
    slot_atom: Vec<u32>,
    slot_position: Vec<[f64; 3]>,
    slot_image: Vec<[i32; 3]>,
}

impl Grid {
    fn new(structure: &Structure, lattice: &SearchLattice, rc_max: f64) -> Result<Self> {
        let n_atoms = structure.len();
        let periodic = lattice.periodic;
        let height: [f64; 3] = std::array::from_fn(|k| 1.0 / norm(lattice.reciprocal[k]));

        // images needed per periodic direction: the slab +-rc around an atom in [0, 1)
        let mut images = 1.0;
        for k in 0..3 {
            if periodic[k] {
                images *= 2.0 * (rc_max / height[k]).ceil() + 1.0;
            }
        }
        if images > MAX_IMAGES_PER_ATOM {
            return Err(Error::TooLarge(format!(
                "a cutoff of {rc_max} Angstrom needs about {images:.3e} periodic images of a cell \
                 whose lattice planes are {height:.4?} Angstrom apart; the limit is \
                 {MAX_IMAGES_PER_ATOM:.0e}: use a supercell or a smaller cutoff"
            )));
        }

        let mut fractional = Vec::with_capacity(n_atoms);
        let mut image = Vec::with_capacity(n_atoms);
        for (i, &r) in structure.positions().iter().enumerate() {
            let mut s = lattice.fractional(r);
            let mut o = [0i32; 3];
            for k in 0..3 {
                if periodic[k] {
                    let shift = s[k].floor();
                    if shift.abs() > i32::MAX as f64 / 2.0 {
                        return Err(Error::invalid(format!(
                            "atom {i} lies {shift:.3e} cell lengths outside the cell along \
                             periodic direction {k}; wrap the positions first"
                        )));
                    }
                    s[k] -= shift;
                    o[k] = shift as i32;
                    // a tiny negative s rounds s - floor(s) up to exactly 1
                    if s[k] >= 1.0 {
                        s[k] -= 1.0;
                        o[k] += 1;
                    }
                }
            }
            fractional.push(s);
            image.push(o);
        }

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
        // the margin absorbs rounding in the wrapped coordinates, which grows with the size of
        // the coordinates; decisions inside it are made exactly
        let cell_scale: f64 = structure.cell().iter().map(|v| norm(*v)).sum();
        let position_scale = structure
            .positions()
            .iter()
            .map(|r| norm(*r))
            .fold(0.0, f64::max);
        let max_image = image
            .iter()
            .flatten()
            .map(|o| o.unsigned_abs() as f64)
            .fold(0.0, f64::max);
        let margin = 1e-9 * (1.0 + rc_max) + 1e-12 * (position_scale + max_image * cell_scale);
        let reach: [f64; 3] = std::array::from_fn(|k| (rc_max + margin) / height[k]);
        let filter2 = (rc_max + margin) * (rc_max + margin);

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
        let mut slot_atom = vec![0u32; n_atoms];
        let mut slot_position = vec![[0.0; 3]; n_atoms];
        let mut slot_image = vec![[0; 3]; n_atoms];
        let cell = structure.cell();
        for (i, &b) in atom_bin.iter().enumerate() {
            let slot = fill[b];
            fill[b] += 1;
            slot_atom[slot] = i as u32;
            let r = structure.positions()[i];
            let o = image[i];
            slot_image[slot] = o;
            slot_position[slot] = std::array::from_fn(|c| {
                r[c] - (o[0] as f64 * cell[0][c]
                    + o[1] as f64 * cell[1][c]
                    + o[2] as f64 * cell[2][c])
            });
        }

        Ok(Grid {
            periodic,
            n_bins,
            origin,
            bins_per_unit,
            bin_width: bins_per_unit.map(|b| 1.0 / b),
            reach,
            filter2,
            inverse_min_metric: (1.0 + 1e-9) / min_eigenvalue(gram(&lattice.vectors)),
            margin,
            lattice: lattice.vectors,
            fractional,
            image,
            bin_start,
            slot_atom,
            slot_position,
            slot_image,
        })
    }

    /// Appends the neighbors of atom i to `out`. Bins along the last lattice direction are
    /// contiguous in slot order, so each run of them at one periodic image is scanned as a
    /// single slot range.
    fn search(
        &self,
        structure: &Structure,
        pair_cutoff: impl Fn(usize, usize) -> f64,
        self_interaction: bool,
        i: usize,
        out: &mut Chunk,
        wrapped_rows: &mut Vec<(i64, i64, i64)>,
    ) {
        let s = self.fractional[i];
        let mut lo = [0i64; 3];
        let mut hi = [0i64; 3];
        for k in 0..3 {
            lo[k] = floor_i64((s[k] - self.reach[k] - self.origin[k]) * self.bins_per_unit[k]);
            hi[k] = floor_i64((s[k] + self.reach[k] - self.origin[k]) * self.bins_per_unit[k]);
            if !self.periodic[k] {
                lo[k] = lo[k].max(0);
                hi[k] = hi[k].min(self.n_bins[k] - 1);
            }
        }
        let [n0, n1, n2] = self.n_bins;
        wrapped_rows.clear();
        wrapped_rows.extend((lo[1]..=hi[1]).map(|c| (c, c.rem_euclid(n1), c.div_euclid(n1))));

        let positions = structure.positions();
        let cell = structure.cell();
        let r_i = positions[i];
        let o_i = self.image[i];
        let w_i = self.wrapped(r_i, o_i, cell);
        let l = &self.lattice;
        // A fractional displacement d has length^2 = d G d^T >= lambda_min(G) |d|^2 (G the
        // lattice's Gram matrix), so rows of bins whose fractional gap to the atom is too large
        // are skipped and each remaining row's range along direction 2 is narrowed: the scan
        // then follows the sphere rather than its bounding box (exactly so for cubic cells).
        let radius2 = self.filter2 * self.inverse_min_metric;
        for c0 in lo[0]..=hi[0] {
            let (b0, t0) = (c0.rem_euclid(n0), c0.div_euclid(n0));
            let gap0 = self.gap(s, c0, 0);
            if gap0 * gap0 >= radius2 {
                continue;
            }
            for &(c1, b1, t1) in wrapped_rows.iter() {
                let gap1 = self.gap(s, c1, 1);
                let rest2 = radius2 - gap0 * gap0 - gap1 * gap1;
                if rest2 <= 0.0 {
                    continue;
                }
                let half = rest2.sqrt().min(self.reach[2]);
                let mut lo2 = floor_i64((s[2] - half - self.origin[2]) * self.bins_per_unit[2]);
                let mut hi2 = floor_i64((s[2] + half - self.origin[2]) * self.bins_per_unit[2]);
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
                    for slot in slots {
                        let p = self.slot_position[slot];
                        let dx = p[0] + offset[0];
                        let dy = p[1] + offset[1];
                        let dz = p[2] + offset[2];
                        if dx * dx + dy * dy + dz * dz >= self.filter2 {
                            continue;
                        }
                        let j = self.slot_atom[slot] as usize;
                        let o_j = self.slot_image[slot];
                        let shift = [
                            t0 as i32 + o_i[0] - o_j[0],
                            t1 as i32 + o_i[1] - o_j[1],
                            t2 as i32 + o_i[2] - o_j[2],
                        ];
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
                            out.neighbors.push(j as u32);
                            out.shifts.push(shift);
                        }
                    }
                }
            }
        }
    }

    /// Distance in fractional coordinate k from s to bin c (unwrapped), 0 inside it.
    #[inline(always)]
    fn gap(&self, s: [f64; 3], c: i64, k: usize) -> f64 {
        let lower = self.origin[k] + c as f64 * self.bin_width[k];
        let upper = lower + self.bin_width[k];
        (lower - s[k]).max(s[k] - upper).max(0.0)
    }

    fn wrapped(&self, r: [f64; 3], o: [i32; 3], cell: &[[f64; 3]; 3]) -> [f64; 3] {
        std::array::from_fn(|c| {
            r[c] - (o[0] as f64 * cell[0][c] + o[1] as f64 * cell[1][c] + o[2] as f64 * cell[2][c])
        })
    }
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

fn gram(l: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|a| std::array::from_fn(|b| dot(l[a], l[b])))
}

/// Smallest eigenvalue of a symmetric positive definite 3x3 matrix, by the closed form for
/// the roots of its characteristic cubic (Smith, Commun. ACM 4, 168 (1961)).
fn min_eigenvalue(a: [[f64; 3]; 3]) -> f64 {
    let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    if off == 0.0 {
        return a[0][0].min(a[1][1]).min(a[2][2]);
    }
    let q = (a[0][0] + a[1][1] + a[2][2]) / 3.0;
    let p2 = (a[0][0] - q).powi(2) + (a[1][1] - q).powi(2) + (a[2][2] - q).powi(2) + 2.0 * off;
    let p = (p2 / 6.0).sqrt();
    let b: [[f64; 3]; 3] = std::array::from_fn(|r| {
        std::array::from_fn(|c| (a[r][c] - if r == c { q } else { 0.0 }) / p)
    });
    let r = (crate::structure::det(&b) / 2.0).clamp(-1.0, 1.0);
    let phi = r.acos() / 3.0;
    q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos()
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
                shifts: true,
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

    #[test]
    fn min_eigenvalue_of_known_matrices() {
        let diagonal = [[4.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 9.0]];
        assert_eq!(min_eigenvalue(diagonal), 2.0);
        // eigenvalues 1, 2, 4 rotated by 30 degrees about z
        let (c, s) = (3f64.sqrt() / 2.0, 0.5);
        let m = [
            [c * c + 2.0 * s * s, c * s * (1.0 - 2.0), 0.0],
            [c * s * (1.0 - 2.0), s * s + 2.0 * c * c, 0.0],
            [0.0, 0.0, 4.0],
        ];
        assert!((min_eigenvalue(m) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn empty_structure() {
        let s = Structure::new(vec![], [[0.0; 3]; 3], [false; 3], vec![]).unwrap();
        let list = neighbor_list(&s, &Cutoff::Uniform(3.0), ALL).unwrap();
        assert_eq!(list.offsets, vec![0]);
    }
}
