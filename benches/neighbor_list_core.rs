//! The neighbor list in the Rust core alone, without Python, on ordinary and skewed cells:
//! 64,000-atom rattled diamond Si (cubic cell), 32,000-atom fcc Cu in its primitive
//! (60-degree) cell, a 10,368-atom hexagonal slab periodic in two directions, one atom in a
//! small cell with a cutoff of several cell lengths, and 32,000 fcc atoms in a cell with a
//! 24-fold shear. Best of several repeats at 1 and 2 threads.
//!
//! Run: cargo bench --bench neighbor_list_core
//! Environment: MLPOT_BENCH_REPEATS (default 7), MLPOT_BENCH_THREADS (e.g. "1"),
//! MLPOT_BENCH_CASE (run only the case whose name contains it). For instruction counts:
//! MLPOT_BENCH_REPEATS=1 MLPOT_BENCH_THREADS=1 valgrind --tool=callgrind
//! --toggle-collect='mlpot::neighbors::neighbor_list*' target/release/deps/neighbor_list_core-*

use std::time::Instant;

use mlpot::neighbors::{neighbor_list, Cutoff, ListOptions};
use mlpot::structure::Structure;

/// A reproducible rattle in [-amplitude/2, amplitude/2) from a linear congruential generator.
fn rattler(amplitude: f64) -> impl FnMut() -> f64 {
    let mut state: u64 = 1;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * amplitude
    }
}

/// `repeats` copies of a cell along each vector, the basis given in fractional coordinates.
fn crystal(
    cell: [[f64; 3]; 3],
    basis: &[[f64; 3]],
    repeats: [usize; 3],
    pbc: [bool; 3],
    rattle: f64,
) -> Structure {
    let mut noise = rattler(rattle);
    let mut positions = Vec::new();
    for x in 0..repeats[0] {
        for y in 0..repeats[1] {
            for z in 0..repeats[2] {
                for b in basis {
                    let f = [x as f64 + b[0], y as f64 + b[1], z as f64 + b[2]];
                    positions.push(std::array::from_fn(|c| {
                        f[0] * cell[0][c] + f[1] * cell[1][c] + f[2] * cell[2][c] + noise()
                    }));
                }
            }
        }
    }
    let big = std::array::from_fn(|k| cell[k].map(|x| x * repeats[k] as f64));
    let n = positions.len();
    Structure::new(positions, big, pbc, vec![14; n]).unwrap()
}

fn cases() -> Vec<(&'static str, Structure, f64)> {
    let diamond = [
        [0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
        [0.25, 0.25, 0.25],
        [0.25, 0.75, 0.75],
        [0.75, 0.25, 0.75],
        [0.75, 0.75, 0.25],
    ];
    let a = 5.43;
    let cubic = [[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]];
    let h = 3.61 / 2.0;
    let fcc_primitive = [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]];
    let (ah, ch) = (3.21, 5.21);
    let hexagonal = [
        [ah, 0.0, 0.0],
        [-ah / 2.0, ah * 3f64.sqrt() / 2.0, 0.0],
        [0.0, 0.0, ch],
    ];
    let hcp = [[0.0, 0.0, 0.0], [1.0 / 3.0, 2.0 / 3.0, 0.5]];
    // the fcc primitive cell sheared: b -> b + 24 a, the same lattice
    let sheared = [
        fcc_primitive[0],
        std::array::from_fn(|c| fcc_primitive[1][c] + 24.0 * fcc_primitive[0][c]),
        fcc_primitive[2],
    ];
    vec![
        (
            "diamond Si, cubic cell",
            crystal(cubic, &diamond, [20; 3], [true; 3], 0.1),
            5.0,
        ),
        (
            "fcc Cu, primitive cell",
            crystal(fcc_primitive, &[[0.0; 3]], [32; 3], [true; 3], 0.1),
            5.0,
        ),
        (
            "hcp Mg slab, pbc TTF",
            crystal(hexagonal, &hcp, [36, 36, 4], [true, true, false], 0.1),
            6.0,
        ),
        (
            "1 atom, 2.5 A cube, many images",
            crystal(
                cubic.map(|v| v.map(|x| x * 2.5 / a)),
                &[[0.0; 3]],
                [1; 3],
                [true; 3],
                0.0,
            ),
            12.0,
        ),
        (
            "fcc Cu, 24-fold sheared primitive cell",
            crystal(sheared, &[[0.0; 3]], [32; 3], [true; 3], 0.1),
            5.0,
        ),
    ]
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let repeats: usize = env_or("MLPOT_BENCH_REPEATS", "7").parse().unwrap();
    let threads: Vec<usize> = env_or("MLPOT_BENCH_THREADS", "1,2")
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let only = env_or("MLPOT_BENCH_CASE", "");
    for (name, structure, cutoff) in cases() {
        if !name.contains(&only) {
            continue;
        }
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            let mut best = f64::INFINITY;
            let mut pairs = 0;
            for _ in 0..repeats {
                let start = Instant::now();
                let list = pool.install(|| {
                    neighbor_list(&structure, &Cutoff::Uniform(cutoff), ListOptions::default())
                        .unwrap()
                });
                best = best.min(start.elapsed().as_secs_f64());
                pairs = list.n_pairs();
            }
            println!(
                "{name}: {} atoms, cutoff {cutoff} A, {pairs} pairs, {t} thread(s): {:.2} ms",
                structure.len(),
                best * 1e3
            );
        }
    }
}
