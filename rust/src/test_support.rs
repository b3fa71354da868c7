//! Helpers shared by the unit tests of every module: test structures and comparisons.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::structure::Structure;

/// A rattled simple-cubic cell of `reps` cells of side `a` (Angstrom), sheared a little (by
/// 0.3 and -0.2 Angstrom) so that it is triclinic, with elements drawn from `species` and displacements up to
/// `rattle` Angstrom. Periodic along all axes when `periodic`, else a cluster.
pub fn rattled_cell(
    seed: u64,
    species: &[u32],
    a: f64,
    reps: [usize; 3],
    rattle: f64,
    periodic: bool,
) -> Structure {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut positions = Vec::new();
    let mut numbers = Vec::new();
    for x in 0..reps[0] {
        for y in 0..reps[1] {
            for z in 0..reps[2] {
                let p = [x, y, z].map(|c| c as f64 * a + rng.random_range(-rattle..rattle));
                positions.push(p);
                numbers.push(species[rng.random_range(0..species.len())]);
            }
        }
    }
    let [nx, ny, nz] = reps.map(|n| n as f64 * a);
    let cell = [[nx, 0.0, 0.0], [0.3, ny, 0.0], [0.0, -0.2, nz]];
    Structure::new(positions, cell, [periodic; 3], numbers).unwrap()
}

/// `s` with atom `atom` moved by `d` along axis `c`.
pub fn moved(s: &Structure, atom: usize, c: usize, d: f64) -> Structure {
    let mut positions = s.positions().to_vec();
    positions[atom][c] += d;
    Structure::new(positions, *s.cell(), s.pbc(), s.numbers().to_vec()).unwrap()
}

/// `s` with every atom moved by `e` times the displacement field `u`.
pub fn displaced(s: &Structure, u: &[[f64; 3]], e: f64) -> Structure {
    let positions = s
        .positions()
        .iter()
        .zip(u)
        .map(|(p, u)| std::array::from_fn(|a| p[a] + e * u[a]))
        .collect();
    Structure::new(positions, *s.cell(), s.pbc(), s.numbers().to_vec()).unwrap()
}

/// `s` deformed by F = I + e E_ab (r_a += e r_b for positions and cell vectors).
pub fn sheared(s: &Structure, a: usize, b: usize, e: f64) -> Structure {
    let deform = |p: [f64; 3]| {
        let mut q = p;
        q[a] += e * p[b];
        q
    };
    let positions = s.positions().iter().map(|&p| deform(p)).collect();
    let cell = s.cell().map(deform);
    Structure::new(positions, cell, s.pbc(), s.numbers().to_vec()).unwrap()
}

/// Asserts |a - b| <= tol (scale + |b|).
#[track_caller]
pub fn assert_close(a: f64, b: f64, tol: f64, scale: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * (scale + b.abs()),
        "{what}: {a} vs {b} (difference {:e})",
        (a - b).abs()
    );
}

/// Uniform random numbers in [-1, 1).
pub fn random_vector(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}
